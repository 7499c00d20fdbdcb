//! `schema.sql` is the full current D1 schema: applying `migrations/` in order to an empty
//! database must give exactly its tables, columns, keys, indexes and views.

use std::collections::BTreeMap;
use std::path::Path;

use rusqlite::Connection;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Everything structural about a database: per object its kind, and per table or view its
/// columns (name, type, not null, default, key position); per index its table and columns.
fn shape(conn: &Connection) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut objects = conn.prepare("SELECT type, name, tbl_name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY name").unwrap();
    let rows: Vec<(String, String, String)> = objects.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).unwrap().map(Result::unwrap).collect();
    for (kind, name, table) in rows {
        let detail: Vec<String> = if kind == "index" {
            let mut cols = conn.prepare(&format!("PRAGMA index_info('{name}')")).unwrap();
            cols.query_map([], |r| r.get::<_, String>(2)).unwrap().map(Result::unwrap).collect()
        } else {
            let mut cols = conn.prepare(&format!("PRAGMA table_info('{name}')")).unwrap();
            cols.query_map([], |r| Ok(format!("{}:{}:{}:{:?}:{}", r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get::<_, i64>(3)?, r.get::<_, Option<String>>(4)?, r.get::<_, i64>(5)?)))
                .unwrap()
                .map(Result::unwrap)
                .collect()
        };
        out.insert(name, format!("{kind} on {table}: {}", detail.join(", ")));
    }
    out
}

#[test]
fn migrations_from_empty_give_schema_sql() {
    let migrated = Connection::open_in_memory().unwrap();
    let mut files: Vec<_> = std::fs::read_dir(root().join("migrations")).unwrap().map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|e| e == "sql")).collect();
    files.sort();
    assert!(!files.is_empty());
    for f in files {
        migrated.execute_batch(&std::fs::read_to_string(&f).unwrap()).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
    }
    let declared = Connection::open_in_memory().unwrap();
    declared.execute_batch(&std::fs::read_to_string(root().join("schema.sql")).unwrap()).unwrap();
    assert_eq!(shape(&migrated), shape(&declared));
}
