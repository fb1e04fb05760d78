//! Control events (spec §4.9): `sysControl` and `dataControl` for admins, `userControl` for
//! everyone. Each request is answered with one `org.wt.tell` event to its sender, `re` = the
//! request id, `thredId` = `SYSTEM`; failures are answered with `content.error`.

use super::{pages, reload, Processor};
use crate::bus::Position;
use crate::documents::Documents;
use crate::files::PatternSource;
use crate::history::History;
use crate::store::patterns::Refused;
use crate::store::{Activation, PatternRegistry, Pushed, Registry};
use serde_json::{json, Value};
use std::sync::Arc;
use threds_patterns::machine::quota::json_size;
use threds_patterns::machine::{Code, Input, Machine, Message};
use threds_patterns::model::event::{
    Source, DATA_CONTROL, SYSTEM, SYS_CONTROL, TELL, USER_CONTROL,
};
use threds_patterns::model::{Event, TransitionModel};

/// `answer` saying, when the history sink is `behind` (records of the history topic not yet
/// written), that the history it shows may miss the latest steps.
fn with_behind(mut answer: Value, behind: u64) -> Value {
    if behind > 0 {
        answer["historyBehind"] = json!(behind);
    }
    answer
}

/// The collections the engine's history keeps (refused to `dataControl`).
const HISTORY: [&str; 3] = [
    crate::topology::collections::EVENTS,
    crate::topology::collections::THRED_LOG,
    crate::topology::collections::ARCHIVE,
];

/// The role control events of `sysControl` and `dataControl` need.
pub const ADMIN_ROLE: &str = "admin";

/// Reads the pattern files again: `Some(id)` one pattern, `None` all; answers their sources and
/// the machine of the files (for its sessions model and resolver).
pub type Reload = Arc<
    dyn Fn(Option<&str>) -> Result<(Vec<PatternSource>, Machine), super::reload::Error>
        + Send
        + Sync,
>;

/// A failed request: a code of spec §1.5 and a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The code.
    pub code: Code,
    /// What went wrong.
    pub message: String,
}

fn refuse(code: Code, message: impl Into<String>) -> Refusal {
    Refusal {
        code,
        message: message.into(),
    }
}

/// The admin service.
pub struct Admin {
    processor: Arc<Processor>,
    patterns: Arc<dyn PatternRegistry>,
    documents: Arc<dyn Documents>,
    reload: Reload,
    announcer: Option<super::control::Announcer>,
    versions_kept: usize,
}

/// Pattern versions kept when nothing says otherwise (`[engine] pattern_versions_kept`).
const DEFAULT_VERSIONS_KEPT: usize = 5;

impl Admin {
    /// An admin service over the engine's processor (and its thred state), the pattern registry
    /// and the documents store.
    pub fn new(
        processor: Arc<Processor>,
        patterns: Arc<dyn PatternRegistry>,
        documents: Arc<dyn Documents>,
        reload: Reload,
    ) -> Admin {
        Admin {
            processor,
            patterns,
            documents,
            reload,
            announcer: None,
            versions_kept: DEFAULT_VERSIONS_KEPT,
        }
    }

    /// Keeps `kept` pattern versions per pattern beyond the active one and those in use.
    pub fn with_versions_kept(mut self, kept: usize) -> Admin {
        self.versions_kept = kept;
        self
    }

    /// Also announces pattern reloads on the control topic, so every engine applies them.
    pub fn with_announcer(mut self, announcer: super::control::Announcer) -> Admin {
        self.announcer = Some(announcer);
        self
    }

    /// Runs the changed `registry` on this engine and tells the other engines to load it
    /// (`pattern_id` names the pattern changed; `None`: several).
    async fn apply(&self, pattern_id: Option<&str>, registry: &Registry) -> Result<(), Refusal> {
        self.run_registry(registry, None)?;
        self.announce(pattern_id, registry.version).await
    }

    /// Runs `registry` on this engine (with the files' sessions model and resolver when given).
    fn run_registry(&self, registry: &Registry, files: Option<Machine>) -> Result<(), Refusal> {
        reload::run(registry, self.processor.engine(), files).map_err(|e| {
            refuse(
                Code::ServerError,
                format!("the pattern registry changed, but this engine could not run it: {e}"),
            )
        })
    }

    /// Tells the other engines to load the registry at `version` (or later).
    async fn announce(&self, pattern_id: Option<&str>, version: u64) -> Result<(), Refusal> {
        let Some(announcer) = &self.announcer else {
            return Ok(());
        };
        let announcement = super::control::Announcement::Reload {
            pattern_id: pattern_id.map(str::to_string),
            origin: announcer.node().to_string(),
            version,
        };
        announcer.announce(&announcement).await.map_err(|e| {
            refuse(
                Code::ServerError,
                format!("the pattern registry changed, but the other engines were not told: {e}"),
            )
        })
    }

    /// Pushes `sources` as `activation` says (retiring patterns not among them when
    /// `retire_others`), runs the result and announces it; answers what each push did. A
    /// `reload` moves the live threds of each replaced active version to the new one first (as
    /// SrvThreds' reloads swap the definition under them), those whose current reaction the new
    /// version lacks excepted: they stay where they are, and the answer lists them.
    async fn push(
        &self,
        sources: &[PatternSource],
        activation: Activation,
        retire_others: bool,
        files: Option<Machine>,
        reload: bool,
    ) -> Result<(Vec<Pushed>, Vec<Value>), Refusal> {
        let spec = reload::Push {
            activation,
            retire_others,
            kept: self.versions_kept,
            now: self.processor.now(),
        };
        let threds = self.processor.threds().as_ref();
        let (pushed, registry) = reload::push(self.patterns.as_ref(), threds, sources, spec)
            .await
            .map_err(refusal_of)?;
        let id = match sources {
            [one] => Some(one.id.as_str()),
            _ => None,
        };
        // This engine runs the new versions before any thred is moved onto them; the others
        // read the registry when they meet a version they do not hold yet.
        self.run_registry(&registry, files)?;
        let mut stayed = Vec::new();
        if reload {
            for p in pushed.iter().filter(|p| p.active && p.was_active > 0) {
                if p.was_active == p.version {
                    continue;
                }
                let (_, refused) = self
                    .migrate_pattern(&p.id, p.version, Some(p.was_active), "reload")
                    .await?;
                stayed.extend(refused);
            }
        }
        self.announce(id, registry.version).await?;
        Ok((pushed, stayed))
    }

    /// Handles one control event, read at `origin`, and sends its reply (and any messages the
    /// operation produced). The reply's id comes from `origin`, never from the request's
    /// (client-chosen) id: two requests with the same id get a reply each, and a redelivered
    /// request the same reply (which the session feed then drops).
    pub async fn handle(&self, request: &Event, origin: &Position) -> Result<(), super::Error> {
        let now = self.processor.now();
        let reply = match self.values(request).await {
            Ok(values) => json!({"content": {"values": values}}),
            Err(r) => {
                json!({"content": {"error": {"message": r.message, "code": r.code.number()}}})
            }
        };
        let mut data = reply;
        data["title"] = json!(format!(
            "System Event -> Thred: SYSTEM -> Re: Event: {}",
            request.id()
        ));
        let event = json!({
            "id": format!("evt-sys-{}-{}-{}", origin.topic, origin.partition, origin.offset),
            "type": TELL,
            "re": request.id(),
            "thredId": SYSTEM,
            "source": Source::system(),
            "time": now,
            "data": data,
        });
        tracing::debug!(
            request = request.id(),
            kind = request.event_type(),
            "control event answered"
        );
        let event = match Event::from_value(event) {
            Ok(e) => e,
            Err(e) => {
                tracing::error!(request = request.id(), error = %e, "could not build a control reply");
                return Ok(());
            }
        };
        self.processor
            .send(&[Message {
                to: vec![request.source_id().to_string()],
                event,
            }])
            .await
    }

    fn is_admin(&self, request: &Event) -> bool {
        let stamped = request
            .source()
            .get("roles")
            .and_then(Value::as_array)
            .is_some_and(|roles| roles.iter().any(|r| r.as_str() == Some(ADMIN_ROLE)));
        stamped
            || self
                .processor
                .engine()
                .current()
                .sessions()
                .roles_of(request.source_id())
                .iter()
                .any(|r| r == ADMIN_ROLE)
    }

    async fn values(&self, request: &Event) -> Result<Value, Refusal> {
        if request.thred_id() != Some(SYSTEM) {
            return Err(refuse(
                Code::MissingArgument,
                "control events must carry thredId \"SYSTEM\"",
            ));
        }
        let kind = request.event_type();
        if (kind == SYS_CONTROL || kind == DATA_CONTROL) && !self.is_admin(request) {
            return Err(refuse(
                Code::Unauthorized,
                format!("{} requires the {ADMIN_ROLE} role", kind),
            ));
        }
        match kind {
            DATA_CONTROL => self.data_control(request).await,
            SYS_CONTROL => {
                let op = op_of(request)?;
                self.sys_control(request, &op).await.map(|mut v| {
                    v["op"] = json!(op);
                    v
                })
            }
            USER_CONTROL => {
                let op = op_of(request)?;
                self.user_control(request, &op).await.map(|mut v| {
                    v["op"] = json!(op);
                    v
                })
            }
            other => Err(refuse(
                Code::ArgumentValidation,
                format!("{other} is not a control event"),
            )),
        }
    }

    async fn data_control(&self, request: &Event) -> Result<Value, Refusal> {
        let tasks = request
            .content()
            .and_then(|c| c.get("tasks"))
            .and_then(Value::as_array)
            .ok_or_else(|| {
                refuse(
                    Code::MissingArgument,
                    "No tasks provided: data.content.tasks must be an array",
                )
            })?;
        // The history is the engine's record of what happened: not for hand edits.
        for (i, entry) in tasks.iter().enumerate() {
            if let Some(c) = crate::documents::collections_of(entry)
                .into_iter()
                .find(|c| HISTORY.contains(c))
            {
                return Err(refuse(
                    Code::Unauthorized,
                    format!("tasks[{i}]: collection {c} is the engine's history; dataControl may not touch it"),
                ));
            }
        }
        let now = self.processor.now();
        let mut results = Vec::new();
        for (i, entry) in tasks.iter().enumerate() {
            let r = self
                .documents
                .run(entry, now)
                .await
                .map_err(|e| refuse(Code::TaskError, format!("tasks[{i}]: {e}")))?;
            results.push(r);
        }
        Ok(json!({ "result": results }))
    }

    async fn sys_control(&self, request: &Event, op: &str) -> Result<Value, Refusal> {
        match op {
            "getThreds" => self.thred_page(request).await,
            "terminateThred" => {
                let id = thred_arg(request)?;
                self.run(
                    Input::Terminate {
                        thred_id: id.clone(),
                    },
                    request,
                )
                .await?;
                Ok(json!({"status": "OK", "thredId": id}))
            }
            "transitionThred" => {
                let id = thred_arg(request)?;
                let transition: TransitionModel = request
                    .value_named("transition")
                    .cloned()
                    .and_then(|t| serde_json::from_value(t).ok())
                    .ok_or_else(|| {
                        refuse(
                            Code::MissingArgument,
                            "transitionThred needs a transition {name, input?, localName?}",
                        )
                    })?;
                self.run(
                    Input::Transition {
                        thred_id: id.clone(),
                        transition,
                    },
                    request,
                )
                .await?;
                Ok(json!({"status": "OK", "thredId": id}))
            }
            "terminateAllThreds" => {
                // Page by page: terminating a thred takes it out of the list being read.
                let threds = self.processor.threds();
                loop {
                    let ids = threds.thred_page(None, pages::MAX_LIMIT).await;
                    let ids = ids.map_err(server)?;
                    if ids.is_empty() {
                        break;
                    }
                    for id in ids {
                        self.run(Input::Terminate { thred_id: id }, request).await?;
                    }
                }
                Ok(json!({"status": "OK"}))
            }
            "reloadPattern" => {
                let id = request
                    .value_named("patternId")
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        refuse(Code::MissingArgument, "reloadPattern needs a patternId")
                    })?;
                let (sources, files) = (self.reload)(Some(id))
                    .map_err(|e| refuse(Code::ObjectNotFound, e.to_string()))?;
                let (pushed, stayed) = self
                    .push(&sources, Activation::Always, false, Some(files), true)
                    .await?;
                Ok(json!({"status": "OK", "patternId": id, "pushed": pushed, "notMoved": stayed}))
            }
            "pushPatterns" => self.push_patterns(request).await,
            "activatePattern" => {
                let id = pattern_arg(request)?;
                let version = version_arg(request, "version")?;
                let (was, registry) = reload::change(self.patterns.as_ref(), |r| {
                    let was = r.pattern(&id).map_or(0, |p| p.active);
                    r.activate(&id, version).map(|()| was)
                })
                .await
                .map_err(refusal_of)?;
                self.apply(Some(&id), &registry).await?;
                Ok(json!({"status": "OK", "patternId": id, "active": version, "wasActive": was}))
            }
            "rollbackPattern" => {
                let id = pattern_arg(request)?;
                let (answer, registry) = reload::change(self.patterns.as_ref(), |r| {
                    let was = r.pattern(&id).map_or(0, |p| p.active);
                    r.rollback(&id).map(|now| (was, now))
                })
                .await
                .map_err(refusal_of)?;
                self.apply(Some(&id), &registry).await?;
                let (was, active) = answer;
                Ok(json!({"status": "OK", "patternId": id, "active": active, "wasActive": was}))
            }
            "listPatternVersions" => self.list_versions(request).await,
            "migrateThred" => {
                let id = thred_arg(request)?;
                let version = version_arg(request, "version")?;
                self.run(
                    Input::Migrate {
                        thred_id: id.clone(),
                        version,
                    },
                    request,
                )
                .await?;
                Ok(json!({"status": "OK", "thredId": id, "version": version}))
            }
            "migrateThreds" => self.migrate_all(request).await,
            "watchThreds" => {
                let directive = request
                    .value_named("directive")
                    .and_then(Value::as_str)
                    .unwrap_or("start");
                let who = request.source_id();
                let now = self.processor.now();
                match directive {
                    "start" => self.processor.watchers().start(who, request.id(), now),
                    "renew" => {
                        if !self.processor.watchers().renew(who, now) {
                            return Err(refuse(
                                Code::ObjectNotFound,
                                format!("{who} is not watching threds"),
                            ));
                        }
                    }
                    "stop" => self.processor.watchers().stop(who),
                    other => {
                        return Err(refuse(
                            Code::ArgumentValidation,
                            format!("unknown directive '{other}'"),
                        ))
                    }
                }
                // Every engine tells the watcher about the threds it steps.
                if let Some(announcer) = &self.announcer {
                    let re = self
                        .processor
                        .watchers()
                        .re_of(who, now)
                        .unwrap_or_else(|| request.id().to_string());
                    let announcement = super::control::Announcement::Watch {
                        participant: who.to_string(),
                        re,
                        directive: directive.to_string(),
                        at: now,
                        origin: announcer.node().to_string(),
                    };
                    announcer.announce(&announcement).await.map_err(|e| {
                        refuse(
                            Code::ServerError,
                            format!("the watch is registered on one engine, but the others were not told: {e}"),
                        )
                    })?;
                }
                Ok(json!({"status": "OK", "directive": directive}))
            }
            "reloadAllPatterns" => {
                let (sources, files) = (self.reload)(None)
                    .map_err(|e| refuse(Code::ArgumentValidation, e.to_string()))?;
                let (pushed, stayed) = self
                    .push(&sources, Activation::Always, true, Some(files), true)
                    .await?;
                Ok(
                    json!({"status": "OK", "patterns": pushed.len(), "pushed": pushed, "notMoved": stayed}),
                )
            }
            other => Err(refuse(
                Code::ArgumentValidation,
                format!("unknown sysControl operation '{other}'"),
            )),
        }
    }

    async fn user_control(&self, request: &Event, op: &str) -> Result<Value, Refusal> {
        let participant = request.source_id().to_string();
        let now = self.processor.now();
        match op {
            "getThreds" => {
                let status = request
                    .value_named("status")
                    .and_then(Value::as_str)
                    .unwrap_or("active");
                let limit =
                    pages::limit(request.value_named("limit")).map_err(|(c, m)| refuse(c, m))?;
                let (history, behind) = self.caught_up_history().await?;
                let mut threds = Vec::new();
                if status == "active" || status == "all" {
                    // The participant index: the cost is this participant's threds, not all.
                    let ids = self.processor.threds().threds_of(&participant).await;
                    let ids = ids.map_err(server)?;
                    threds.extend(
                        self.live_threds(&ids, Some(&participant), with_context(request))
                            .await?,
                    );
                }
                if status == "terminated" || status == "all" {
                    let matcher = json!({"participants": participant});
                    let archived = history.archived(Some(matcher), "", limit, now).await;
                    threds.extend(archived.map_err(server)?);
                }
                let mut results = Vec::new();
                for thred in threds {
                    let id = thred
                        .get("id")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string();
                    let last = history
                        .last_event(&id, &participant, now)
                        .await
                        .map_err(server)?;
                    results.push(json!({"thred": thred, "lastEvent": last.and_then(|r| r.get("event").cloned())}));
                }
                results.sort_by_key(|r| {
                    std::cmp::Reverse(r["lastEvent"]["time"].as_i64().unwrap_or(0))
                });
                // The most recent `limit`, within a page's bytes.
                let mut bytes = 0;
                let kept = results.iter().take(limit).take_while(|r| {
                    bytes += json_size(*r);
                    bytes <= pages::MAX_PAGE_BYTES
                });
                let kept = kept.count().max(results.len().min(1));
                let more = kept < results.len();
                results.truncate(kept);
                let answer = json!({"status": "OK", "results": results, "more": more});
                Ok(with_behind(answer, behind))
            }
            "getEvents" => {
                let id = request
                    .value_named("thredId")
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        refuse(
                            Code::MissingArgument,
                            "No thredId supplied for getEvents operation",
                        )
                    })?;
                // An admin may read every participant's events (`allParticipants`).
                let every = request.value_named("allParticipants") == Some(&json!(true));
                let visible_to = if every && self.is_admin(request) {
                    None
                } else {
                    Some(participant.as_str())
                };
                let (history, behind) = self.caught_up_history().await?;
                let records = history.events(id, visible_to, now).await.map_err(server)?;
                // `withRecipients`: each entry is `{event, to, timestamp}` (who a message went to).
                let whole = request.value_named("withRecipients") == Some(&json!(true));
                let events: Vec<Value> = records
                    .into_iter()
                    .filter_map(|mut r| {
                        if whole {
                            Some(json!({"event": r["event"].take(), "to": r["to"].take(), "timestamp": r["timestamp"].take()}))
                        } else {
                            r.get_mut("event").map(Value::take)
                        }
                    })
                    .collect();
                Ok(with_behind(
                    json!({"status": "OK", "events": events}),
                    behind,
                ))
            }
            other => Err(refuse(
                Code::ArgumentValidation,
                format!("unknown userControl operation '{other}'"),
            )),
        }
    }

    /// `sysControl getThreds`: the threds named by `thredIds`, or a page of the live threds
    /// (`status` `active`, the default), the archived ones (`terminated`) or both (`all`: live
    /// first), `limit` at most, after `after`; `next` names the status and cursor of the
    /// following page.
    async fn thred_page(&self, request: &Event) -> Result<Value, Refusal> {
        let status = request
            .value_named("status")
            .and_then(Value::as_str)
            .unwrap_or("active");
        if !["active", "terminated", "all"].contains(&status) {
            return Err(refuse(
                Code::ArgumentValidation,
                format!("status must be active, terminated or all, not '{status}'"),
            ));
        }
        let limit = pages::limit(request.value_named("limit")).map_err(|(c, m)| refuse(c, m))?;
        let after = request
            .value_named("after")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let mut page = pages::Page::new(limit);
        if let Some(ids) = request.value_named("thredIds").and_then(Value::as_array) {
            let ids: Vec<String> = ids
                .iter()
                .filter_map(Value::as_str)
                .take(limit)
                .map(str::to_string)
                .collect();
            let threds = self.live_threds(&ids, None, with_context(request)).await?;
            page.add(pages::Listing::Active, "", threds, true);
            return Ok(page.into_answer());
        }
        let mut from = after;
        if status != "terminated" {
            let room = page.room();
            let ids = self
                .processor
                .threds()
                .thred_page(Some(from).filter(|a| !a.is_empty()), room)
                .await;
            let ids = ids.map_err(server)?;
            let exhausted = ids.len() < room;
            let threds = self.live_threds(&ids, None, with_context(request)).await?;
            page.add(pages::Listing::Active, from, threds, exhausted);
            // `all` goes on with the archive from its start.
            from = "";
        }
        let mut behind = 0;
        if status != "active" && !page.full() {
            let room = page.room();
            let matcher = request.value_named("terminatedMatcher").cloned();
            let now = self.processor.now();
            let history;
            (history, behind) = self.caught_up_history().await?;
            let threds = history.archived(matcher, from, room, now).await;
            let threds = threds.map_err(server)?;
            let exhausted = threds.len() < room;
            page.add(pages::Listing::Terminated, from, threds, exhausted);
        }
        let mut answer = page.into_answer();
        if status == "all" && answer["next"]["status"] == "active" {
            // Continuing with `all` goes on into the archive after the live threds.
            answer["next"]["status"] = json!("all");
        }
        Ok(with_behind(answer, behind))
    }

    /// `pushPatterns`: `patterns` (pattern JSON objects, or their text) become new versions,
    /// active at once unless `activate` is false; `origin` says where they came from.
    async fn push_patterns(&self, request: &Event) -> Result<Value, Refusal> {
        let given = request
            .value_named("patterns")
            .and_then(Value::as_array)
            .filter(|a| !a.is_empty())
            .ok_or_else(|| {
                refuse(
                    Code::MissingArgument,
                    "pushPatterns needs patterns: an array of pattern JSON objects (or their text)",
                )
            })?;
        let texts: Vec<String> = given
            .iter()
            .map(|p| match p {
                Value::String(text) => text.clone(),
                other => other.to_string(),
            })
            .collect();
        let origin = match request.value_named("origin").and_then(Value::as_str) {
            Some(o) => format!("push:{}:{o}", request.source_id()),
            None => format!("push:{}", request.source_id()),
        };
        let sources = reload::sources_of(&texts, "patterns", &origin)
            .map_err(|e| refuse(Code::ArgumentValidation, e.to_string()))?;
        let activation = match request.value_named("activate").and_then(Value::as_bool) {
            Some(false) => Activation::Never,
            _ => Activation::Always,
        };
        let (pushed, _) = self.push(&sources, activation, false, None, false).await?;
        Ok(json!({"status": "OK", "pushed": pushed}))
    }

    /// `listPatternVersions`: every pattern's versions (or `patternId`'s), with the live threds
    /// running each, and with their JSON when `withSource` is true.
    async fn list_versions(&self, request: &Event) -> Result<Value, Refusal> {
        let only = request.value_named("patternId").and_then(Value::as_str);
        let with_source = request
            .value_named("withSource")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let mut registry = self.patterns.registry().await.map_err(server)?;
        if let Some(id) = only {
            registry.patterns.retain(|p| p.id == id);
            if registry.patterns.is_empty() {
                return Err(refuse(
                    Code::ObjectNotFound,
                    format!("pattern {id} is not in the pattern registry"),
                ));
            }
        }
        let live = reload::live_per_version(&registry, self.processor.threds().as_ref())
            .await
            .map_err(server)?;
        let mut live = live.into_iter();
        let patterns: Vec<Value> = registry
            .patterns
            .iter()
            .map(|p| {
                let versions: Vec<Value> = p
                    .versions
                    .iter()
                    .map(|v| {
                        let mut entry = json!({
                            "version": v.number,
                            "hash": v.hash,
                            "origin": v.origin,
                            "pushedAt": v.pushed_at,
                            "active": v.number == p.active,
                            "liveThreds": live.next().unwrap_or(0),
                        });
                        if with_source {
                            entry["source"] = json!(v.source);
                        }
                        entry
                    })
                    .collect();
                json!({"patternId": p.id, "active": p.active, "previous": p.previous, "versions": versions})
            })
            .collect();
        Ok(json!({"status": "OK", "registryVersion": registry.version, "patterns": patterns}))
    }

    /// `migrateThreds`: every live thred of `patternId` (on `fromVersion` only, when given) moves
    /// to `version`; answers how many moved and why the others did not.
    async fn migrate_all(&self, request: &Event) -> Result<Value, Refusal> {
        let id = pattern_arg(request)?;
        let version = version_arg(request, "version")?;
        let from = match request.value_named("fromVersion") {
            Some(_) => Some(version_arg(request, "fromVersion")?),
            None => None,
        };
        let (migrated, refused) = self
            .migrate_pattern(&id, version, from, request.id())
            .await?;
        Ok(
            json!({"status": "OK", "patternId": id, "version": version, "migrated": migrated, "refused": refused}),
        )
    }

    /// Moves every live thred of pattern `id` (on version `from` only, when given) to `version`,
    /// a page of threds at a time; answers how many moved and, for the others, why not.
    async fn migrate_pattern(
        &self,
        id: &str,
        version: u32,
        from: Option<u32>,
        seed: &str,
    ) -> Result<(u64, Vec<Value>), Refusal> {
        let threds = self.processor.threds();
        let (mut after, mut migrated, mut refused) = (None::<String>, 0u64, Vec::new());
        loop {
            let ids = threds
                .thred_page(after.as_deref(), pages::MAX_LIMIT)
                .await
                .map_err(server)?;
            let Some(last) = ids.last().cloned() else {
                break;
            };
            let stored = threds.load(&ids).await.map_err(server)?;
            for state in stored.into_iter().flatten().map(|s| s.state) {
                let on = state.pattern_version;
                let wanted = state.pattern_id == id
                    && on != Some(version)
                    && from.is_none_or(|f| on == Some(f));
                if !wanted {
                    continue;
                }
                let input = Input::Migrate {
                    thred_id: state.id.clone(),
                    version,
                };
                match self.run_seeded(input, seed).await {
                    Ok(()) => migrated += 1,
                    Err(r) => refused.push(
                        json!({"thredId": state.id, "code": r.code.number(), "reason": r.message}),
                    ),
                }
            }
            after = Some(last);
        }
        Ok((migrated, refused))
    }

    /// The history, once the sink has written what it held when asked (or the wait ran out),
    /// with how many history records the sink is still behind.
    async fn caught_up_history(&self) -> Result<(&History, u64), Refusal> {
        let history = self
            .processor
            .history()
            .ok_or_else(|| refuse(Code::ServerError, "no history is kept by this engine"))?;
        Ok((history, history.caught_up().await))
    }

    /// Live threds `ids` as Thred JSON; with `participant`, only those it takes part in.
    async fn live_threds(
        &self,
        ids: &[String],
        participant: Option<&str>,
        context: bool,
    ) -> Result<Vec<Value>, Refusal> {
        let engine = self.processor.engine().current();
        let stored = self.processor.threds().load(ids).await.map_err(server)?;
        Ok(stored
            .into_iter()
            .flatten()
            .filter(|s| {
                participant
                    .is_none_or(|p| s.state.thred_context.participant_ids.iter().any(|x| x == p))
            })
            .map(|s| {
                let mut thred = s
                    .state
                    .to_json(engine.pattern_of(&s.state).map(|p| p.as_ref()));
                if context {
                    let c = &s.state.thred_context;
                    thred["context"] =
                        json!({"participants": c.participant_ids, "locals": c.scope});
                }
                thred
            })
            .collect())
    }

    /// Runs an admin input through the machine; its failure becomes the refusal.
    async fn run(&self, input: Input, request: &Event) -> Result<(), Refusal> {
        self.run_seeded(input, request.id()).await
    }

    /// Runs an admin input, its ids seeded by `seed`; its failure becomes the refusal.
    async fn run_seeded(&self, input: Input, seed: &str) -> Result<(), Refusal> {
        let outcome = self.processor.admin(input, seed).await.map_err(server)?;
        match outcome.failures.first() {
            Some(f) => {
                let code = f.error.get("code").and_then(Value::as_u64).unwrap_or(5000);
                let code = [
                    Code::ThredDoesNotExist,
                    Code::ArgumentValidation,
                    Code::ObjectNotFound,
                ]
                .into_iter()
                .find(|c| u64::from(c.number()) == code)
                .unwrap_or(Code::ServerError);
                Err(refuse(code, f.message().to_string()))
            }
            None => Ok(()),
        }
    }
}

/// Whether a `getThreds` request asks for each thred's participants and locals (`withContext`).
fn with_context(request: &Event) -> bool {
    request.value_named("withContext") == Some(&json!(true))
}

fn op_of(request: &Event) -> Result<String, Refusal> {
    request
        .value_named("op")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| refuse(Code::MissingArgument, "No operation name supplied"))
}

fn thred_arg(request: &Event) -> Result<String, Refusal> {
    request
        .value_named("thredId")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| refuse(Code::MissingArgument, "No thredId supplied"))
}

fn pattern_arg(request: &Event) -> Result<String, Refusal> {
    request
        .value_named("patternId")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| refuse(Code::MissingArgument, "No patternId supplied"))
}

fn version_arg(request: &Event, name: &str) -> Result<u32, Refusal> {
    let value = request
        .value_named(name)
        .ok_or_else(|| refuse(Code::MissingArgument, format!("No {name} supplied")))?;
    value
        .as_u64()
        .and_then(|v| u32::try_from(v).ok())
        .filter(|v| *v > 0)
        .ok_or_else(|| {
            refuse(
                Code::ArgumentValidation,
                format!("{name} must be a positive whole number, not {value}"),
            )
        })
}

/// A failed push or registry change: what the caller got wrong, or the server's failure.
fn refusal_of(e: reload::Error) -> Refusal {
    let code = match &e {
        reload::Error::Refused(
            Refused::UnknownPattern(_)
            | Refused::UnknownVersion { .. }
            | Refused::NoEarlierVersion(_),
        ) => Code::ObjectNotFound,
        reload::Error::Refused(_) | reload::Error::Files(_) | reload::Error::NotFound { .. } => {
            Code::ArgumentValidation
        }
        reload::Error::Registry(_) | reload::Error::Stale { .. } => Code::ServerError,
    };
    refuse(code, e.to_string())
}

fn server(e: impl std::fmt::Display) -> Refusal {
    refuse(Code::ServerError, e.to_string())
}
