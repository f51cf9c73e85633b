//! Groups interaction rows into users' histories, the way every source format is ordered
//! (README.md § Dataset format): users in the order they first appear, each user's events sorted by timestamp with
//! ties kept in row order. Shared by the importers (RecBole, Amazon) so they order alike.

use std::collections::HashMap;

use super::{Event, UserHistory};

/// Collects `(user id, event)` rows in file order; [`HistoryBuilder::finish`] orders them.
#[derive(Debug, Default)]
pub struct HistoryBuilder {
    users: Vec<UserHistory>,
    slot: HashMap<String, usize>,
}

impl HistoryBuilder {
    /// Appends a row for `user`.
    pub fn push(&mut self, user: &str, event: Event) {
        let slot = match self.slot.get(user) {
            Some(&slot) => slot,
            None => {
                self.users.push(UserHistory { id: user.to_string(), events: Vec::new() });
                self.slot.insert(user.to_string(), self.users.len() - 1);
                self.users.len() - 1
            }
        };
        self.users[slot].events.push(event);
    }

    /// Whether no row was pushed.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// The users in first-appearance order, each sorted by timestamp; `sort_by` is stable, so equal
    /// timestamps keep their row order.
    pub fn finish(mut self) -> Vec<UserHistory> {
        for user in &mut self.users {
            user.events.sort_by(|a, b| a.timestamp.total_cmp(&b.timestamp));
        }
        self.users
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(item: u32, timestamp: f64) -> Event {
        Event { item, timestamp, rating: None }
    }

    #[test]
    fn first_appearance_order_and_stable_time_sort() {
        let mut builder = HistoryBuilder::default();
        builder.push("u2", event(0, 5.0));
        builder.push("u1", event(1, 3.0));
        builder.push("u2", event(2, 3.0));
        builder.push("u2", event(3, 5.0));
        let users = builder.finish();
        assert_eq!(users.iter().map(|u| u.id.as_str()).collect::<Vec<_>>(), ["u2", "u1"]);
        assert_eq!(users[0].events.iter().map(|e| e.item).collect::<Vec<_>>(), [2, 0, 3]);
    }
}
