//! The object store behind [`super::FakeApi`]: objects as JSON, a global resourceVersion,
//! a bounded event history for watch resumption, and the write semantics of the API
//! server (system metadata, generation, status subresource, finalizers, no-op writes).
//!
//! Everything here is synchronous and runs under one mutex; watch streams subscribe to the
//! broadcast channel while holding that mutex, so no event can fall between the replayed
//! history and the live feed.

use std::{
    collections::{BTreeMap, VecDeque},
    sync::Arc,
};

use k8s_openapi::{apimachinery::pkg::apis::meta::v1::Time, jiff::Timestamp};
use serde_json::{Map, Value, json};
use tokio::sync::broadcast;

use super::{
    KindInfo,
    error::ApiError,
    merge::{applied_fields, apply_merge, merge_patch, remove_unapplied},
};

/// Where an object lives: kind identity plus namespace (`""` when cluster-scoped) and name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct ObjKey {
    pub(crate) group: String,
    pub(crate) version: String,
    pub(crate) plural: String,
    pub(crate) namespace: String,
    pub(crate) name: String,
}

impl ObjKey {
    pub(crate) fn new(kind: &KindInfo, namespace: Option<&str>, name: &str) -> Self {
        Self {
            group: kind.group.clone(),
            version: kind.version.clone(),
            plural: kind.plural.clone(),
            namespace: namespace.unwrap_or_default().to_owned(),
            name: name.to_owned(),
        }
    }

    fn same_kind(&self, kind: &KindInfo) -> bool {
        self.group == kind.group && self.version == kind.version && self.plural == kind.plural
    }
}

/// The watch event types the store produces (`ERROR` and `BOOKMARK` are made by the stream).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum EventType {
    Added,
    Modified,
    Deleted,
}

/// One change, kept in history and broadcast to open watches. `old` lets a selector-filtered
/// watch turn "stopped matching" into DELETED and "started matching" into ADDED, as the
/// real server does.
#[derive(Debug)]
pub(crate) struct Event {
    pub(crate) rv: u64,
    pub(crate) key: ObjKey,
    pub(crate) kind: EventType,
    pub(crate) old: Option<Value>,
    pub(crate) object: Value,
}

/// How a write body is combined with the stored object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WriteMode {
    /// PUT: the body replaces the object.
    Replace,
    /// RFC 7386 merge patch (also used for strategic merge patch).
    Merge,
    /// Server-side apply, recorded in managedFields under this manager.
    Apply,
}

/// A write request as the service decoded it.
pub(crate) struct Write<'a> {
    pub(crate) kind: &'a KindInfo,
    pub(crate) namespace: Option<&'a str>,
    pub(crate) name: &'a str,
    pub(crate) body: Value,
    pub(crate) mode: WriteMode,
    pub(crate) status: bool,
    pub(crate) field_manager: Option<&'a str>,
    pub(crate) dry_run: bool,
}

pub(crate) struct Store {
    pub(crate) objects: BTreeMap<ObjKey, Value>,
    /// Last resourceVersion handed out; every change bumps it.
    pub(crate) rv: u64,
    /// Events newer than `oldest_rv`; a watch from an older version gets 410 Gone.
    pub(crate) history: VecDeque<Arc<Event>>,
    pub(crate) oldest_rv: u64,
    history_limit: usize,
    uid_counter: u64,
    pub(crate) events: broadcast::Sender<Arc<Event>>,
}

impl Store {
    pub(crate) fn new(history_limit: usize, channel_capacity: usize) -> Self {
        let (events, _) = broadcast::channel(channel_capacity.max(1));
        Self {
            objects: BTreeMap::new(),
            rv: 0,
            history: VecDeque::new(),
            oldest_rv: 0,
            history_limit: history_limit.max(1),
            uid_counter: 0,
            events,
        }
    }

    /// Forgets all history, as etcd compaction does: watches from any earlier version get 410.
    pub(crate) fn compact(&mut self) {
        self.history.clear();
        self.oldest_rv = self.rv;
    }

    pub(crate) fn get(&self, key: &ObjKey) -> Result<Value, ApiError> {
        self.objects
            .get(key)
            .cloned()
            .ok_or_else(|| ApiError::not_found(&key.plural, &key.name))
    }

    /// Objects of one kind, optionally in one namespace, in name order.
    pub(crate) fn list<'s>(
        &'s self,
        kind: &'s KindInfo,
        namespace: Option<&'s str>,
    ) -> impl Iterator<Item = &'s Value> + 's {
        self.objects
            .iter()
            .filter(move |(k, _)| k.same_kind(kind) && namespace.is_none_or(|ns| k.namespace == ns))
            .map(|(_, v)| v)
    }

    /// POST: 409 AlreadyExists if the name is taken; `generateName` is honoured.
    pub(crate) fn create(&mut self, w: Write<'_>) -> Result<Value, ApiError> {
        let mut body = w.body;
        let name = match body.pointer("/metadata/name").and_then(Value::as_str) {
            Some(n) if !n.is_empty() => n.to_owned(),
            _ => match body
                .pointer("/metadata/generateName")
                .and_then(Value::as_str)
            {
                Some(prefix) => format!("{prefix}{:05x}", self.uid_counter + 1),
                None => return Err(ApiError::invalid("metadata.name: Required value")),
            },
        };
        set_meta(&mut body, "name", json!(name))?;
        let key = ObjKey::new(w.kind, w.namespace, &name);
        if self.objects.contains_key(&key) {
            return Err(ApiError::already_exists(&key.plural, &name));
        }
        let new = self.prepare(w.kind, &key, None, body, false)?;
        Ok(self.commit(key, new, w.dry_run))
    }

    /// PUT and PATCH on the object or its `/status`.
    pub(crate) fn write(&mut self, w: Write<'_>) -> Result<Value, ApiError> {
        let key = ObjKey::new(w.kind, w.namespace, w.name);
        if let Some(body_name) = w.body.pointer("/metadata/name").and_then(Value::as_str)
            && body_name != w.name
        {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({})",
                w.name
            )));
        }
        let old = self.objects.get(&key).cloned();
        check_precondition(old.as_ref(), &w.body)?;
        let Some(old) = old else {
            if w.mode == WriteMode::Apply && !w.status {
                let mut body = w.body;
                set_meta(&mut body, "name", json!(w.name))?;
                let fields = applied_fields(&body, &w.kind.list_maps);
                record_apply(&mut body, w.kind, w.field_manager, false, fields)?;
                let new = self.prepare(w.kind, &key, None, body, false)?;
                return Ok(self.commit(key, new, w.dry_run));
            }
            return Err(ApiError::not_found(&key.plural, w.name));
        };
        let mut merged = match w.mode {
            WriteMode::Replace => w.body,
            WriteMode::Merge => merge_patch(old.clone(), w.body),
            WriteMode::Apply => {
                let fields = applied_fields(&w.body, &w.kind.list_maps);
                let mut applied = apply_merge(old.clone(), w.body, &w.kind.list_maps);
                let before = previous_fields(&old, w.field_manager, w.status);
                if let Some(before) = before {
                    remove_unapplied(&mut applied, &before, &fields);
                }
                record_apply(&mut applied, w.kind, w.field_manager, w.status, fields)?;
                applied
            }
        };
        if w.mode == WriteMode::Replace
            && let Some(managed) = old.pointer("/metadata/managedFields")
        {
            set_meta(&mut merged, "managedFields", managed.clone())?;
        }
        let new = self.prepare(w.kind, &key, Some(&old), merged, w.status)?;
        Ok(self.commit(key, new, w.dry_run))
    }

    /// DELETE: removes the object, or only marks it when finalizers remain.
    pub(crate) fn delete(&mut self, key: &ObjKey, dry_run: bool) -> Result<Value, ApiError> {
        let old = self.get(key)?;
        let has_finalizers = old
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .is_some_and(|f| !f.is_empty());
        if dry_run {
            return Ok(old);
        }
        if has_finalizers {
            if old.pointer("/metadata/deletionTimestamp").is_some() {
                return Ok(old);
            }
            let mut marked = old;
            set_meta(&mut marked, "deletionTimestamp", now())?;
            set_meta(&mut marked, "deletionGracePeriodSeconds", json!(0))?;
            return Ok(self.commit(key.clone(), marked, false));
        }
        Ok(self.remove(key))
    }

    /// Removes an object, emits DELETED and cascades to dependents through ownerReferences
    /// (background propagation, without the garbage collector's delay).
    fn remove(&mut self, key: &ObjKey) -> Value {
        let Some(mut old) = self.objects.remove(key) else {
            return Value::Null;
        };
        self.rv += 1;
        let _ = set_meta(&mut old, "resourceVersion", json!(self.rv.to_string()));
        self.emit(key.clone(), EventType::Deleted, None, old.clone());
        let uid = old.pointer("/metadata/uid").cloned();
        let dependents: Vec<ObjKey> = self
            .objects
            .iter()
            .filter(|(_, v)| {
                v.pointer("/metadata/ownerReferences")
                    .and_then(Value::as_array)
                    .is_some_and(|refs| refs.iter().any(|r| r.get("uid") == uid.as_ref()))
            })
            .map(|(k, _)| k.clone())
            .collect();
        for dep in dependents {
            let _ = self.delete(&dep, false);
        }
        old
    }

    /// Applies the server's rules to a candidate object: identity fields, system metadata,
    /// the status subresource split and generation.
    fn prepare(
        &mut self,
        kind: &KindInfo,
        key: &ObjKey,
        old: Option<&Value>,
        candidate: Value,
        status_write: bool,
    ) -> Result<Value, ApiError> {
        let mut new = match (old, status_write) {
            (Some(old), true) => {
                let mut kept = old.clone();
                set_field(&mut kept, "status", candidate.get("status").cloned())?;
                // A status apply records its manager's fields too.
                if let Some(managed) = candidate.pointer("/metadata/managedFields") {
                    set_meta(&mut kept, "managedFields", managed.clone())?;
                }
                kept
            }
            (old, false) => {
                let mut c = candidate;
                if kind.status_subresource {
                    set_field(&mut c, "status", old.and_then(|o| o.get("status")).cloned())?;
                }
                c
            }
            (None, true) => return Err(ApiError::not_found(&key.plural, &key.name)),
        };
        let obj = as_object(&mut new)?;
        obj.insert("apiVersion".into(), json!(kind.api_version()));
        obj.insert("kind".into(), json!(kind.kind));
        set_meta(&mut new, "name", json!(key.name))?;
        if kind.namespaced {
            set_meta(&mut new, "namespace", json!(key.namespace))?;
        }
        let generation = match old {
            None => 1,
            Some(old) => {
                let before = old.pointer("/metadata/generation").and_then(Value::as_i64);
                let before = before.unwrap_or(1);
                if spec_changed(old, &new) {
                    before + 1
                } else {
                    before
                }
            }
        };
        set_meta(&mut new, "generation", json!(generation))?;
        match old {
            Some(old) => {
                for field in ["uid", "creationTimestamp", "deletionTimestamp"] {
                    let value = old.pointer(&format!("/metadata/{field}")).cloned();
                    set_meta_opt(&mut new, field, value)?;
                }
            }
            None => {
                self.uid_counter += 1;
                let uid = format!("00000000-0000-4000-8000-{:012x}", self.uid_counter);
                set_meta(&mut new, "uid", json!(uid))?;
                set_meta(&mut new, "creationTimestamp", now())?;
                set_meta_opt(&mut new, "deletionTimestamp", None)?;
            }
        }
        Ok(new)
    }

    /// Stores `new` unless it equals what is stored (a no-op write keeps the version and emits
    /// nothing, which is what keeps controllers that watch their own output from looping).
    fn commit(&mut self, key: ObjKey, mut new: Value, dry_run: bool) -> Value {
        let old = self.objects.get(&key).cloned();
        if let Some(old) = &old {
            let rv = old.pointer("/metadata/resourceVersion").cloned();
            let _ = set_meta_opt(&mut new, "resourceVersion", rv);
            if *old == new {
                return new;
            }
        }
        if dry_run {
            return new;
        }
        let finished = new.pointer("/metadata/deletionTimestamp").is_some()
            && new
                .pointer("/metadata/finalizers")
                .and_then(Value::as_array)
                .is_none_or(Vec::is_empty);
        if finished && old.is_some() {
            self.objects.insert(key.clone(), new);
            return self.remove(&key);
        }
        self.rv += 1;
        let _ = set_meta(&mut new, "resourceVersion", json!(self.rv.to_string()));
        self.objects.insert(key.clone(), new.clone());
        let kind = if old.is_some() {
            EventType::Modified
        } else {
            EventType::Added
        };
        self.emit(key, kind, old, new.clone());
        new
    }

    fn emit(&mut self, key: ObjKey, kind: EventType, old: Option<Value>, object: Value) {
        let event = Arc::new(Event {
            rv: self.rv,
            key,
            kind,
            old,
            object,
        });
        self.history.push_back(event.clone());
        while self.history.len() > self.history_limit {
            if let Some(dropped) = self.history.pop_front() {
                self.oldest_rv = dropped.rv;
            }
        }
        // No receivers is fine: nobody is watching.
        let _ = self.events.send(event);
    }
}

/// The current time in the API server's format (RFC 3339, seconds).
fn now() -> Value {
    serde_json::to_value(Time(Timestamp::now())).unwrap_or(Value::Null)
}

/// Whether anything but metadata and status differs: what bumps a CRD's generation.
fn spec_changed(old: &Value, new: &Value) -> bool {
    let strip = |v: &Value| -> Value {
        let mut v = v.clone();
        if let Some(o) = v.as_object_mut() {
            o.remove("metadata");
            o.remove("status");
        }
        v
    };
    strip(old) != strip(new)
}

/// A `metadata.resourceVersion` in the body is a precondition (409 Conflict on mismatch).
fn check_precondition(old: Option<&Value>, body: &Value) -> Result<(), ApiError> {
    let Some(wanted) = body
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
    else {
        return Ok(());
    };
    if wanted.is_empty() {
        return Ok(());
    }
    let actual = old.and_then(|o| o.pointer("/metadata/resourceVersion"));
    if actual.and_then(Value::as_str) != Some(wanted) {
        return Err(ApiError::conflict(
            "the object has been modified; please apply your changes to the latest version and try again",
        ));
    }
    Ok(())
}

/// Whether managedFields entry `e` is `manager`'s apply entry for the main resource or status.
fn is_apply_entry(e: &Value, manager: &str, status: bool) -> bool {
    let subresource = if status { "status" } else { "" };
    e.get("manager").and_then(Value::as_str) == Some(manager)
        && e.get("operation").and_then(Value::as_str) == Some("Apply")
        && e.get("subresource").and_then(Value::as_str).unwrap_or("") == subresource
}

/// The fields `manager` applied last time, if it applied before.
fn previous_fields(old: &Value, manager: Option<&str>, status: bool) -> Option<Value> {
    let manager = manager?;
    old.pointer("/metadata/managedFields")?
        .as_array()?
        .iter()
        .find(|e| is_apply_entry(e, manager, status))?
        .get("fieldsV1")
        .cloned()
}

/// Records (or refreshes) `manager`'s managedFields entry with the fields it applied.
fn record_apply(
    obj: &mut Value,
    kind: &KindInfo,
    manager: Option<&str>,
    status: bool,
    fields: Value,
) -> Result<(), ApiError> {
    let manager = manager.ok_or_else(|| {
        ApiError::bad_request("PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch")
    })?;
    let mut entries: Vec<Value> = obj
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    entries.retain(|e| !is_apply_entry(e, manager, status));
    let mut entry = json!({
        "manager": manager,
        "operation": "Apply",
        "apiVersion": kind.api_version(),
        "fieldsType": "FieldsV1",
        "fieldsV1": fields,
    });
    if status {
        entry["subresource"] = json!("status");
    }
    entries.push(entry);
    set_meta(obj, "managedFields", Value::Array(entries))
}

fn as_object(v: &mut Value) -> Result<&mut Map<String, Value>, ApiError> {
    v.as_object_mut()
        .ok_or_else(|| ApiError::bad_request("the body must be a JSON object"))
}

fn set_field(obj: &mut Value, field: &str, value: Option<Value>) -> Result<(), ApiError> {
    let o = as_object(obj)?;
    match value {
        Some(v) => o.insert(field.to_owned(), v),
        None => o.remove(field),
    };
    Ok(())
}

pub(crate) fn set_meta(obj: &mut Value, field: &str, value: Value) -> Result<(), ApiError> {
    set_meta_opt(obj, field, Some(value))
}

fn set_meta_opt(obj: &mut Value, field: &str, value: Option<Value>) -> Result<(), ApiError> {
    let o = as_object(obj)?;
    let meta = o.entry("metadata").or_insert_with(|| json!({}));
    if meta.is_null() {
        *meta = json!({});
    }
    set_field(meta, field, value)
        .map_err(|_| ApiError::bad_request("metadata must be a JSON object"))
}
