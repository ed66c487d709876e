"""Mail templates: {Type.field} placeholders and Handlebars (pybars3) behind a strict guard."""
