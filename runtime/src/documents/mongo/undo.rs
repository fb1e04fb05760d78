//! Compensation: the undo log of an entry run without a transaction, and undoing it.

use mongodb::bson::{doc, Bson, Document};
use mongodb::error::Error as MongoError;
use mongodb::Database;

/// How to undo one write of a compensated entry.
#[derive(Debug)]
pub(super) enum Undo {
    /// Delete the documents with these ids (they were inserted).
    Inserted { collection: String, ids: Vec<Bson> },
    /// Put these documents back as they were (they were updated or replaced).
    Restore {
        collection: String,
        docs: Vec<Document>,
    },
    /// Insert these documents again (they were deleted).
    Reinsert {
        collection: String,
        docs: Vec<Document>,
    },
}

/// Undoes a compensated entry's writes, newest first; every step is tried, the first error is
/// returned.
pub(super) async fn rollback(db: &Database, undo: Vec<Undo>) -> Result<(), MongoError> {
    let mut first_error = None;
    for step in undo.into_iter().rev() {
        let result = match step {
            Undo::Inserted { collection, ids } => db
                .collection::<Document>(&collection)
                .delete_many(doc! {"_id": {"$in": ids}})
                .await
                .map(|_| ()),
            Undo::Restore { collection, docs } => {
                let c = db.collection::<Document>(&collection);
                let mut result = Ok(());
                for doc in docs {
                    let by_id = doc! {"_id": doc.get("_id").cloned().unwrap_or(Bson::Null)};
                    let restored = c.replace_one(by_id, doc).upsert(true).await;
                    if let Err(e) = restored {
                        result = Err(e);
                    }
                }
                result
            }
            Undo::Reinsert { collection, docs } => db
                .collection::<Document>(&collection)
                .insert_many(docs)
                .ordered(false)
                .await
                .map(|_| ()),
        };
        if let Err(e) = result {
            tracing::error!("documents rollback step failed: {e}");
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(()), Err)
}
