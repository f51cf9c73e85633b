//! The text an item is known by: the template itself (parts, optional groups, escapes) lives in the
//! runtime crate, [`omakase_runtime::text_template`], because it travels in the bundle manifest and
//! the browser renders it too. Here: how a catalogue [`Item`] supplies its fields.

use serde_json::Value;

pub use omakase_runtime::text_template::{ItemFields, ItemTextSpec, ItemTextTemplate, TemplateError};

use crate::data::Item;

impl ItemFields for Item {
    fn id(&self) -> &str {
        &self.id
    }
    fn title(&self) -> &str {
        &self.title
    }
    fn description(&self) -> &str {
        &self.description
    }
    fn metadata(&self, key: &str) -> Option<&Value> {
        self.metadata.get(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_catalogue_item_renders_through_the_default_rule() {
        let item = Item {
            id: "7".into(),
            title: " Toy Story ".into(),
            description: " A doll. ".into(),
            image: None,
            metadata: json!({"year": 1995, "genres": ["Animation", "Comedy"]}).as_object().cloned().unwrap(),
        };
        assert_eq!(ItemTextTemplate::default().render(&item), "Toy Story (1995). Animation, Comedy. A doll.");
    }
}
