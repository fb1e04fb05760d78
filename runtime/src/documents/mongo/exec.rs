//! Running planned ops against MongoDB, inside a session's transaction or, on servers without
//! transactions, recording how to undo each write (before making it) so that a failed entry can
//! be compensated (see [`super::undo`]).

use std::sync::atomic::{AtomicBool, Ordering};

use mongodb::bson::{doc, Bson, Document};
use mongodb::error::{Error as MongoError, ErrorKind};
use mongodb::options::FindOptions;
use mongodb::{ClientSession, Collection, Database};
use serde_json::Value;

use super::convert::from_stored;
use super::error::{failure, write_code, Failure, COMMAND_NOT_SUPPORTED};
use super::mul::product;
use super::plan::{given_id, matcher_id, new_id, stored, stored_id, Op};
use super::undo::Undo;
use crate::documents::Error;

/// Where ops run: the database, the transaction's session (if any), the undo log (when
/// compensating) and what the server is known to support.
pub(super) struct Ctx<'s> {
    /// The database.
    pub(super) db: &'s Database,
    /// The session whose transaction the ops run in.
    pub(super) session: Option<&'s mut ClientSession>,
    /// The undo log, when compensating.
    pub(super) undo: Option<&'s mut Vec<Undo>>,
    /// The time of the entry.
    pub(super) now: i64,
    /// Whether the server supports `$mul` (cleared when it says it does not).
    pub(super) mul: &'s AtomicBool,
}

impl Ctx<'_> {
    fn coll(&self, name: &str) -> Collection<Document> {
        self.db.collection(name)
    }

    fn record(&mut self, undo: Undo) {
        if let Some(log) = self.undo.as_deref_mut() {
            log.push(undo);
        }
    }

    /// Runs the ops in order; their results.
    pub(super) async fn run(&mut self, ops: &[Op<'_>]) -> Result<Vec<Value>, Failure> {
        let mut results = Vec::with_capacity(ops.len());
        for op in ops {
            results.push(self.op(op).await?);
        }
        Ok(results)
    }

    async fn op(&mut self, op: &Op<'_>) -> Result<Value, Failure> {
        match op {
            Op::Nothing => Ok(Value::Null),
            Op::Put {
                collection,
                docs,
                ids,
                many,
            } => {
                self.insert(collection, docs.clone(), ids).await?;
                let mut ids = ids.iter().cloned().map(Value::String);
                Ok(if *many {
                    Value::Array(ids.collect())
                } else {
                    ids.next().unwrap_or(Value::Null)
                })
            }
            Op::GetOne {
                collection,
                filter,
                projection,
            } => {
                let options = FindOptions::builder()
                    .projection(projection.clone())
                    .limit(1)
                    .build();
                let found = self.find(collection, filter.clone(), options).await;
                let found = found.map_err(|e| failure(e, collection, &[]))?;
                Ok(found.into_iter().next().map_or(Value::Null, from_stored))
            }
            Op::Get {
                collection,
                filter,
                projection,
                paging,
            } => {
                let options = FindOptions::builder()
                    .projection(projection.clone())
                    .sort(paging.sort.clone())
                    .skip(paging.skip)
                    .limit(paging.limit)
                    .build();
                let found = self.find(collection, filter.clone(), options).await;
                let found = found.map_err(|e| failure(e, collection, &[]))?;
                Ok(Value::Array(found.into_iter().map(from_stored).collect()))
            }
            Op::Update {
                collection,
                filter,
                update,
            } => {
                let filter = self.snapshot(collection, filter.clone()).await?;
                if let Some(filter) = filter {
                    self.update(collection, filter, update, false).await?;
                }
                Ok(Value::Null)
            }
            Op::Upsert {
                collection,
                filter,
                update,
                insert,
            } => {
                match self.first(collection, filter.clone()).await? {
                    Some(id) => self.update(collection, id, update, true).await?,
                    None => {
                        let doc = insert.document(self.now)?;
                        let id = doc.get("_id").map(stored_id).unwrap_or_default();
                        self.insert(collection, vec![doc], &[id]).await?;
                    }
                }
                Ok(Value::Null)
            }
            Op::Replace {
                collection,
                filter,
                matcher,
                values,
            } => {
                let given = given_id(values)?;
                match self.first(collection, filter.clone()).await? {
                    Some(by_id) => {
                        let current = by_id.get("_id").map(stored_id).unwrap_or_default();
                        if given.is_some_and(|id| id != current) {
                            return Err(Error::Invalid(format!(
                                "replace may not change the id of {current}"
                            ))
                            .into());
                        }
                        let mut doc = stored(&current, values);
                        if let Some(id) = by_id.get("_id") {
                            doc.insert("_id", id.clone());
                        }
                        doc.insert("modified", self.now);
                        self.replace(collection, by_id, doc).await?;
                    }
                    None => {
                        let id = match given.or(matcher_id(matcher)?) {
                            Some(id) => id.to_owned(),
                            None => new_id(),
                        };
                        let mut doc = stored(&id, values);
                        doc.insert("modified", self.now);
                        self.insert(collection, vec![doc], &[id]).await?;
                    }
                }
                Ok(Value::Null)
            }
            Op::Delete { collection, filter } => {
                if self.undo.is_some() {
                    let docs = self.find(collection, filter.clone(), FindOptions::default());
                    let docs = docs.await.map_err(|e| failure(e, collection, &[]))?;
                    if docs.is_empty() {
                        return Ok(Value::Null);
                    }
                    let filter = by_ids(filter.clone(), &docs);
                    self.record(Undo::Reinsert {
                        collection: collection.to_string(),
                        docs,
                    });
                    self.delete(collection, filter).await?;
                } else {
                    self.delete(collection, filter.clone()).await?;
                }
                Ok(Value::Null)
            }
            Op::Count { collection, filter } => {
                let c = self.coll(collection);
                let counted = match self.session.as_deref_mut() {
                    Some(s) => c.count_documents(filter.clone()).session(s).await,
                    None => c.count_documents(filter.clone()).await,
                };
                Ok(Value::from(
                    counted.map_err(|e| failure(e, collection, &[]))?,
                ))
            }
        }
    }

    /// The documents `filter` matches, in the order and shape `options` ask for.
    async fn find(
        &mut self,
        collection: &str,
        filter: Document,
        options: FindOptions,
    ) -> Result<Vec<Document>, MongoError> {
        let c = self.coll(collection);
        let mut out = Vec::new();
        match self.session.as_deref_mut() {
            Some(s) => {
                let mut cursor = c
                    .find(filter)
                    .with_options(options)
                    .session(&mut *s)
                    .await?;
                while cursor.advance(s).await? {
                    out.push(cursor.deserialize_current()?);
                }
            }
            None => {
                let mut cursor = c.find(filter).with_options(options).await?;
                while cursor.advance().await? {
                    out.push(cursor.deserialize_current()?);
                }
            }
        }
        Ok(out)
    }

    /// The first match of `filter` as a filter on its `_id` (when compensating, its current
    /// state is recorded to be restored).
    async fn first(
        &mut self,
        collection: &str,
        filter: Document,
    ) -> Result<Option<Document>, Failure> {
        let compensating = self.undo.is_some();
        let options = FindOptions::builder()
            .projection((!compensating).then(|| doc! {"_id": 1}))
            .limit(1)
            .build();
        let found = self.find(collection, filter, options).await;
        let Some(doc) = found
            .map_err(|e| failure(e, collection, &[]))?
            .into_iter()
            .next()
        else {
            return Ok(None);
        };
        let by_id = doc! {"_id": doc.get("_id").cloned().unwrap_or(Bson::Null)};
        if compensating {
            self.record(Undo::Restore {
                collection: collection.to_owned(),
                docs: vec![doc],
            });
        }
        Ok(Some(by_id))
    }

    /// When compensating: records the documents `filter` matches (to be restored) and narrows
    /// the filter to them (`None`: nothing matches). Otherwise the filter as it is.
    async fn snapshot(
        &mut self,
        collection: &str,
        filter: Document,
    ) -> Result<Option<Document>, Failure> {
        if self.undo.is_none() {
            return Ok(Some(filter));
        }
        let docs = self
            .find(collection, filter.clone(), FindOptions::default())
            .await
            .map_err(|e| failure(e, collection, &[]))?;
        if docs.is_empty() {
            return Ok(None);
        }
        let filter = by_ids(filter, &docs);
        self.record(Undo::Restore {
            collection: collection.to_owned(),
            docs,
        });
        Ok(Some(filter))
    }

    /// Inserts `docs` (whose ids are `ids`) in order, recording what was inserted.
    async fn insert(
        &mut self,
        collection: &str,
        docs: Vec<Document>,
        ids: &[String],
    ) -> Result<(), Failure> {
        let id_values: Vec<Bson> = docs.iter().filter_map(|d| d.get("_id").cloned()).collect();
        let c = self.coll(collection);
        let result = match self.session.as_deref_mut() {
            Some(s) => c.insert_many(docs).ordered(true).session(s).await,
            None => c.insert_many(docs).ordered(true).await,
        };
        let inserted = match &result {
            Ok(_) => id_values.len(),
            Err(e) => match e.kind.as_ref() {
                ErrorKind::InsertMany(many) => many
                    .write_errors
                    .as_ref()
                    .and_then(|errors| errors.iter().map(|w| w.index).min())
                    .unwrap_or(id_values.len()),
                _ => 0,
            },
        };
        if inserted > 0 {
            self.record(Undo::Inserted {
                collection: collection.to_owned(),
                ids: id_values.into_iter().take(inserted).collect(),
            });
        }
        result.map(|_| ()).map_err(|e| failure(e, collection, ids))
    }

    /// Applies `update` to every match of `filter` (`one`: to the first), emulating `$mul` on
    /// servers that lack it.
    async fn update(
        &mut self,
        collection: &str,
        filter: Document,
        update: &Document,
        one: bool,
    ) -> Result<(), Failure> {
        let has_mul = update.contains_key("$mul");
        if !has_mul || self.mul.load(Ordering::Relaxed) {
            match self
                .update_native(collection, filter.clone(), update.clone(), one)
                .await
            {
                Ok(()) => return Ok(()),
                Err(e) if has_mul && unsupported(&e) => {
                    tracing::warn!("the MongoDB server does not support $mul; emulating it");
                    self.mul.store(false, Ordering::Relaxed);
                    if self.session.is_some() {
                        // The transaction is aborted: run it again, emulating.
                        let mut f = failure(e, collection, &[]);
                        f.transient = true;
                        return Err(f);
                    }
                }
                Err(e) => return Err(failure(e, collection, &[])),
            }
        }
        self.update_emulating_mul(collection, filter, update, one)
            .await
    }

    async fn update_native(
        &mut self,
        collection: &str,
        filter: Document,
        update: Document,
        one: bool,
    ) -> Result<(), MongoError> {
        let c = self.coll(collection);
        let result = match (self.session.as_deref_mut(), one) {
            (Some(s), false) => c.update_many(filter, update).session(s).await,
            (Some(s), true) => c.update_one(filter, update).session(s).await,
            (None, false) => c.update_many(filter, update).await,
            (None, true) => c.update_one(filter, update).await,
        };
        result.map(|_| ())
    }

    /// `$mul` for servers without it: reads each target, computes the products as the embedded
    /// engine does, and writes them with `$set` alongside the rest of the update (not atomic
    /// against concurrent writers of the same fields).
    async fn update_emulating_mul(
        &mut self,
        collection: &str,
        filter: Document,
        update: &Document,
        one: bool,
    ) -> Result<(), Failure> {
        let mut rest = update.clone();
        let factors = match rest.remove("$mul") {
            Some(Bson::Document(factors)) => factors,
            _ => Document::new(),
        };
        let options = FindOptions::builder().limit(one.then_some(1)).build();
        let targets = self.find(collection, filter, options).await;
        for target in targets.map_err(|e| failure(e, collection, &[]))? {
            let mut update = rest.clone();
            let mut set = match update.remove("$set") {
                Some(Bson::Document(set)) => set,
                _ => Document::new(),
            };
            for (path, factor) in &factors {
                set.insert(path.clone(), product(&target, path, factor)?);
            }
            update.insert("$set", set);
            let by_id = doc! {"_id": target.get("_id").cloned().unwrap_or(Bson::Null)};
            self.update_native(collection, by_id, update, true)
                .await
                .map_err(|e| failure(e, collection, &[]))?;
        }
        Ok(())
    }

    async fn replace(
        &mut self,
        collection: &str,
        filter: Document,
        doc: Document,
    ) -> Result<(), Failure> {
        let c = self.coll(collection);
        let result = match self.session.as_deref_mut() {
            Some(s) => c.replace_one(filter, doc).session(s).await,
            None => c.replace_one(filter, doc).await,
        };
        result.map(|_| ()).map_err(|e| failure(e, collection, &[]))
    }

    async fn delete(&mut self, collection: &str, filter: Document) -> Result<(), Failure> {
        let c = self.coll(collection);
        let result = match self.session.as_deref_mut() {
            Some(s) => c.delete_many(filter).session(s).await,
            None => c.delete_many(filter).await,
        };
        result.map(|_| ()).map_err(|e| failure(e, collection, &[]))
    }
}

/// Did the server refuse the command as not supported?
fn unsupported(e: &MongoError) -> bool {
    write_code(e).is_some_and(|(code, _)| code == COMMAND_NOT_SUPPORTED)
}

/// `filter`, narrowed to the documents `docs` (by `_id`).
fn by_ids(filter: Document, docs: &[Document]) -> Document {
    let ids: Vec<Bson> = docs.iter().filter_map(|d| d.get("_id").cloned()).collect();
    doc! {"$and": [filter, {"_id": {"$in": ids}}]}
}
