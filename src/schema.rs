//! Versioned schema upgrades for the Durable Objects' own SQLite. Each object class lists its
//! migrations in order; an object stores how many it has applied and, when it wakes, applies the
//! rest, each in its own transaction with the new version. Migration 1 of every class is its
//! original `CREATE TABLE IF NOT EXISTS` schema, so objects created before versioning upgrade
//! cleanly. Migrations are append-only: a released one is never edited.

/// Where an object's schema lives (SQLite storage in the Worker; a fake in tests).
pub trait SchemaStore {
    /// Migrations applied so far (0 for a new or pre-versioning object).
    fn version(&self) -> Result<u32, String>;
    /// Runs `sql` and records `version`, atomically.
    fn apply(&self, sql: &str, version: u32) -> Result<(), String>;
}

/// Brings `store` up to `migrations.len()`; returns the version it is at. An object written by a
/// newer build (a rollback) is left as it is, with an error to log: migrations only add.
pub fn upgrade(store: &dyn SchemaStore, migrations: &[&str]) -> Result<u32, String> {
    let current = store.version()?;
    let latest = migrations.len() as u32;
    if current > latest {
        return Err(format!("stored schema version {current} is newer than this build's {latest}; left as it is"));
    }
    for (i, sql) in migrations.iter().enumerate().skip(current as usize) {
        let version = i as u32 + 1;
        store.apply(sql, version).map_err(|e| format!("schema migration {version}: {e}"))?;
    }
    Ok(latest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    #[derive(Default)]
    struct Fake {
        version: RefCell<u32>,
        ran: RefCell<Vec<String>>,
        fail_on: Option<&'static str>,
    }

    impl SchemaStore for Fake {
        fn version(&self) -> Result<u32, String> {
            Ok(*self.version.borrow())
        }
        fn apply(&self, sql: &str, version: u32) -> Result<(), String> {
            if self.fail_on == Some(sql) {
                return Err("disk full".into());
            }
            self.ran.borrow_mut().push(sql.to_string());
            *self.version.borrow_mut() = version;
            Ok(())
        }
    }

    #[test]
    fn applies_what_is_missing_in_order_once() {
        let store = Fake::default();
        assert_eq!(upgrade(&store, &["a", "b"]), Ok(2));
        assert_eq!(upgrade(&store, &["a", "b", "c"]), Ok(3));
        assert_eq!(upgrade(&store, &["a", "b", "c"]), Ok(3));
        assert_eq!(*store.ran.borrow(), ["a", "b", "c"]);
    }

    #[test]
    fn a_failed_migration_stops_at_the_last_good_version() {
        let store = Fake { fail_on: Some("b"), ..Fake::default() };
        assert!(upgrade(&store, &["a", "b", "c"]).unwrap_err().contains("migration 2"));
        assert_eq!(*store.version.borrow(), 1);
        assert_eq!(*store.ran.borrow(), ["a"]);
    }

    #[test]
    fn a_newer_object_is_left_alone() {
        let store = Fake { version: RefCell::new(5), ..Fake::default() };
        assert!(upgrade(&store, &["a"]).is_err());
        assert!(store.ran.borrow().is_empty());
    }
}
