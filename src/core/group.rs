//! The runtime state of one group: members, lock, chat history, shared data and activity.
//!
//! Nothing here is persisted; a group's state lives as long as the group stays in memory
//! (docs/configuration.md, "Reloading").

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::GroupStatus;
use crate::config::GroupEntry;
use crate::conn::ConnId;

use super::event::{ChatEntry, JsonObject};

/// At most this many chat lines are kept per group.
pub const MAX_HISTORY: usize = 50;

/// History retention and idle expiry when the description says nothing (4 h).
pub const DEFAULT_MAX_HISTORY_AGE: Duration = Duration::from_secs(4 * 3600);

/// The lock text shown to refused joiners when the operator gave none.
pub const DEFAULT_LOCK_MESSAGE: &str = "this group is locked";

/// A chat line and when it was stored.
#[derive(Debug, Clone)]
struct StoredChat {
    at: Instant,
    entry: Arc<ChatEntry>,
}

/// One group in memory.
#[derive(Debug)]
pub struct Group {
    entry: GroupEntry,
    members: Vec<ConnId>,
    lock: Option<String>,
    history: VecDeque<StoredChat>,
    data: Arc<JsonObject>,
    last_activity: Instant,
}

impl Group {
    /// A new, empty, unlocked group.
    pub fn new(entry: GroupEntry, now: Instant) -> Group {
        Group {
            entry,
            members: Vec::new(),
            lock: None,
            history: VecDeque::new(),
            data: Arc::new(JsonObject::new()),
            last_activity: now,
        }
    }

    /// The group's name.
    pub fn name(&self) -> &str {
        &self.entry.name
    }

    /// The description in force.
    pub fn entry(&self) -> &GroupEntry {
        &self.entry
    }

    /// Installs a re-read description; returns whether it differs from the current one.
    pub fn update_entry(&mut self, entry: GroupEntry) -> bool {
        let changed = entry.revision != self.entry.revision;
        self.entry = entry;
        changed
    }

    /// The members in join order.
    pub fn members(&self) -> &[ConnId] {
        &self.members
    }

    /// Adds a member and records activity.
    pub fn add_member(&mut self, conn: ConnId, now: Instant) {
        if !self.members.contains(&conn) {
            self.members.push(conn);
        }
        self.last_activity = now;
    }

    /// Removes a member and records activity; returns whether it was there.
    pub fn remove_member(&mut self, conn: ConnId, now: Instant) -> bool {
        let before = self.members.len();
        self.members.retain(|m| *m != conn);
        self.last_activity = now;
        self.members.len() != before
    }

    /// Whether the group is locked.
    pub fn is_locked(&self) -> bool {
        self.lock.is_some()
    }

    /// The text refused joiners see while locked.
    pub fn lock_message(&self) -> Option<&str> {
        self.lock.as_deref().map(|message| {
            if message.is_empty() {
                DEFAULT_LOCK_MESSAGE
            } else {
                message
            }
        })
    }

    /// Locks with `message` (empty for the default text).
    pub fn lock(&mut self, message: String) {
        self.lock = Some(message);
    }

    /// Unlocks.
    pub fn unlock(&mut self) {
        self.lock = None;
    }

    /// The shared group data.
    pub fn data(&self) -> &Arc<JsonObject> {
        &self.data
    }

    /// Merges `update` into the group data; `null` values delete keys.
    pub fn merge_data(&mut self, update: &JsonObject) {
        merge_object(Arc::make_mut(&mut self.data), update);
    }

    /// How long chat lines are kept and how long an empty group may idle.
    pub fn max_age(&self) -> Duration {
        self.entry
            .description
            .max_history_age
            .map(Duration::from_secs)
            .unwrap_or(DEFAULT_MAX_HISTORY_AGE)
    }

    /// Appends a chat line, dropping the oldest beyond [`MAX_HISTORY`].
    pub fn push_history(&mut self, entry: ChatEntry, now: Instant) {
        self.history.push_back(StoredChat {
            at: now,
            entry: Arc::new(entry),
        });
        while self.history.len() > MAX_HISTORY {
            self.history.pop_front();
        }
        self.last_activity = now;
    }

    /// The chat history still within the retention age, oldest first; older lines are
    /// discarded.
    pub fn history(&mut self, now: Instant) -> impl Iterator<Item = &Arc<ChatEntry>> + '_ {
        let max_age = self.max_age();
        while let Some(oldest) = self.history.front() {
            if now.saturating_duration_since(oldest.at) > max_age {
                self.history.pop_front();
            } else {
                break;
            }
        }
        self.history.iter().map(|stored| &stored.entry)
    }

    /// Removes history lines: every line when `source` is `None`, else the lines of that
    /// sender (only the one with `id` when given).
    pub fn clear_history(&mut self, source: Option<&str>, id: Option<&str>) {
        match source {
            None => self.history.clear(),
            Some(source) => self.history.retain(|stored| {
                let same_source = stored.entry.source == source;
                let same_id = id.is_none_or(|id| stored.entry.id == id);
                !(same_source && same_id)
            }),
        }
    }

    /// Whether the group may be dropped from memory: not public, empty, idle too long.
    pub fn is_expired(&self, now: Instant) -> bool {
        !self.entry.description.public
            && self.members.is_empty()
            && now.saturating_duration_since(self.last_activity) > self.max_age()
    }

    /// The status as HTTP and `joined` show it.
    pub fn status(&self) -> GroupStatus {
        status_of(&self.entry, self.is_locked(), self.members.len())
    }
}

/// The status of a group entry with runtime lock state and member count.
pub fn status_of(entry: &GroupEntry, locked: bool, client_count: usize) -> GroupStatus {
    let description = &entry.description;
    GroupStatus {
        name: entry.name.clone(),
        redirect: description.redirect.clone(),
        display_name: description.display_name.clone(),
        description: description.description.clone(),
        auth_server: description.auth_server.clone(),
        auth_portal: description.auth_portal.clone(),
        public: description.public,
        locked,
        client_count,
    }
}

/// Merges `update` into `target`: `null` deletes a key, anything else replaces it.
pub fn merge_object(target: &mut JsonObject, update: &JsonObject) {
    for (key, value) in update {
        if value.is_null() {
            target.remove(key);
        } else {
            target.insert(key.clone(), value.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Description;
    use serde_json::json;
    use std::time::SystemTime;

    fn entry(max_age: Option<u64>) -> GroupEntry {
        GroupEntry {
            name: "g".into(),
            description: Arc::new(Description {
                max_history_age: max_age,
                ..Description::default()
            }),
            is_subgroup: false,
            revision: 1,
        }
    }

    fn chat(id: &str, source: &str) -> ChatEntry {
        ChatEntry {
            id: id.into(),
            source: source.into(),
            username: None,
            time: SystemTime::UNIX_EPOCH,
            subkind: String::new(),
            value: Some(json!(id)),
        }
    }

    #[test]
    fn history_keeps_the_newest_fifty() {
        let now = Instant::now();
        let mut group = Group::new(entry(None), now);
        for i in 0..60 {
            group.push_history(chat(&i.to_string(), "a"), now);
        }
        let ids: Vec<String> = group.history(now).map(|e| e.id.clone()).collect();
        assert_eq!(ids.len(), MAX_HISTORY);
        assert_eq!(ids[0], "10");
        assert_eq!(ids[49], "59");
    }

    #[test]
    fn history_expires_on_read() {
        let start = Instant::now();
        let mut group = Group::new(entry(Some(60)), start);
        group.push_history(chat("old", "a"), start);
        group.push_history(chat("new", "a"), start + Duration::from_secs(30));
        let at = start + Duration::from_secs(61);
        let ids: Vec<String> = group.history(at).map(|e| e.id.clone()).collect();
        assert_eq!(ids, ["new"]);
    }

    #[test]
    fn clear_history_by_source_and_id() {
        let now = Instant::now();
        let mut group = Group::new(entry(None), now);
        group.push_history(chat("1", "a"), now);
        group.push_history(chat("2", "b"), now);
        group.push_history(chat("3", "a"), now);
        group.clear_history(Some("a"), Some("3"));
        let ids: Vec<String> = group.history(now).map(|e| e.id.clone()).collect();
        assert_eq!(ids, ["1", "2"]);
        group.clear_history(Some("a"), None);
        let ids: Vec<String> = group.history(now).map(|e| e.id.clone()).collect();
        assert_eq!(ids, ["2"]);
        group.clear_history(None, None);
        assert_eq!(group.history(now).count(), 0);
    }

    #[test]
    fn data_merge_deletes_nulls() {
        let mut group = Group::new(entry(None), Instant::now());
        let update = json!({"a": 1, "b": 2});
        group.merge_data(update.as_object().unwrap_or(&JsonObject::new()));
        let update = json!({"a": null});
        group.merge_data(update.as_object().unwrap_or(&JsonObject::new()));
        assert_eq!(Value::Object((**group.data()).clone()), json!({"b": 2}));
    }

    #[test]
    fn expiry_needs_empty_idle_and_not_public() {
        let start = Instant::now();
        let mut group = Group::new(entry(Some(10)), start);
        assert!(!group.is_expired(start + Duration::from_secs(5)));
        assert!(group.is_expired(start + Duration::from_secs(11)));
        group.add_member(ConnId(1), start);
        assert!(!group.is_expired(start + Duration::from_secs(11)));
    }

    use serde_json::Value;
}
