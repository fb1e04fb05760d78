//! The durable copy of the embedded store: a redb file holding every document as JSON text, keyed
//! by `(collection, insertion sequence)` so that reloading keeps the natural order.

use std::collections::BTreeSet;
use std::path::Path;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde_json::Value;

use super::state::Store;
use super::Error;

/// Documents: `(collection, seq)` → the document as JSON text.
const DOCUMENTS: TableDefinition<'_, (&str, u64), &str> = TableDefinition::new("documents");

/// Store-wide counters.
const META: TableDefinition<'_, &str, u64> = TableDefinition::new("meta");

/// The META key of the generated-id counter.
const NEXT_ID: &str = "next_id";

/// The META key of the file layout version.
const FORMAT: &str = "format";

/// The file layout this code reads and writes.
const FORMAT_VERSION: u64 = 1;

/// Stored rows as read back: `(collection, seq, JSON text)`.
type Rows = Vec<(String, u64, String)>;

/// The file name inside the store's directory.
pub(crate) const FILE_NAME: &str = "documents.redb";

/// An open documents file.
#[derive(Debug)]
pub(crate) struct Disk {
    db: Database,
}

fn backend(context: &str) -> impl Fn(redb::Error) -> Error + '_ {
    move |e| Error::Backend(format!("{context}: {e}"))
}

impl Disk {
    /// Opens (creating when needed) `dir/documents.redb` and loads its documents.
    pub(crate) fn open(dir: &Path) -> Result<(Self, Store), Error> {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::Backend(format!("creating {}: {e}", dir.display())))?;
        let file = dir.join(FILE_NAME);
        let db =
            Database::create(&file).map_err(|e| backend("opening documents file")(e.into()))?;
        let disk = Self { db };
        disk.initialize()
            .map_err(backend("initializing documents file"))?;
        let store = disk.load()?;
        Ok((disk, store))
    }

    /// Creates the tables and checks the layout version.
    fn initialize(&self) -> Result<(), redb::Error> {
        let txn = self.db.begin_write()?;
        {
            txn.open_table(DOCUMENTS)?;
            let mut meta = txn.open_table(META)?;
            let format = meta.get(FORMAT)?.map(|v| v.value());
            match format {
                None => {
                    meta.insert(FORMAT, FORMAT_VERSION)?;
                }
                Some(FORMAT_VERSION) => {}
                Some(other) => {
                    return Err(redb::Error::Corrupted(format!(
                        "documents file format {other}, this build reads {FORMAT_VERSION}"
                    )));
                }
            }
        }
        txn.commit()?;
        Ok(())
    }

    /// Reads every document back into memory.
    fn load(&self) -> Result<Store, Error> {
        let read = || -> Result<(Rows, u64), redb::Error> {
            let txn = self.db.begin_read()?;
            let next_id = txn.open_table(META)?.get(NEXT_ID)?.map_or(0, |v| v.value());
            let mut rows = Vec::new();
            for row in txn.open_table(DOCUMENTS)?.iter()? {
                let (key, value) = row?;
                let (collection, seq) = key.value();
                rows.push((collection.to_owned(), seq, value.value().to_owned()));
            }
            Ok((rows, next_id))
        };
        let (rows, next_id) = read().map_err(backend("reading documents file"))?;
        let mut store = Store::default();
        store.set_next_id(next_id);
        for (collection, seq, text) in rows {
            let corrupt = |why: String| {
                Error::Backend(format!("document {collection}/{seq} is corrupt: {why}"))
            };
            let doc = match serde_json::from_str(&text) {
                Ok(Value::Object(doc)) => doc,
                Ok(_) => return Err(corrupt("not an object".into())),
                Err(e) => return Err(corrupt(e.to_string())),
            };
            store
                .restore(&collection, seq, doc)
                .map_err(|e| corrupt(e.to_string()))?;
        }
        Ok(store)
    }

    /// Writes the documents a transaction touched (their state in `store`; missing ones are
    /// deleted) and, when `save_id`, the id counter, in one durable redb transaction.
    pub(crate) fn save(
        &self,
        store: &Store,
        touched: &BTreeSet<(&str, u64)>,
        save_id: bool,
    ) -> Result<(), Error> {
        let mut texts = Vec::with_capacity(touched.len());
        for &(collection, seq) in touched {
            let text = store
                .doc(collection, seq)
                .map(serde_json::to_string)
                .transpose()
                .map_err(|e| Error::Backend(format!("encoding document: {e}")))?;
            texts.push(((collection, seq), text));
        }
        let write = || -> Result<(), redb::Error> {
            let txn = self.db.begin_write()?;
            {
                let mut documents = txn.open_table(DOCUMENTS)?;
                for (key, text) in &texts {
                    match text {
                        Some(text) => documents.insert(key, text.as_str())?,
                        None => documents.remove(key)?,
                    };
                }
                if save_id {
                    txn.open_table(META)?.insert(NEXT_ID, store.next_id())?;
                }
            }
            txn.commit()?;
            Ok(())
        };
        write().map_err(backend("writing documents file"))
    }
}
