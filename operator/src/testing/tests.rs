//! End-to-end tests of the fake through a real `kube::Client`, `watcher` and `Controller`.

use std::{sync::Arc, time::Duration};

use futures_util::{StreamExt, TryStreamExt};
use http::Method;
use k8s_openapi::api::{
    coordination::v1::{Lease, LeaseSpec},
    core::v1::{ConfigMap, Secret},
};
use kube::{
    Api, CustomResource, Resource, ResourceExt,
    api::{
        DeleteParams, ListParams, ObjectMeta, Patch, PatchParams, PostParams, WatchEvent,
        WatchParams,
    },
    runtime::{
        Controller,
        controller::Action,
        watcher::{self, Event, watcher},
    },
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::time::timeout;

use super::{ApiError, FakeApi};

const WAIT: Duration = Duration::from_secs(10);

#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "test.tollgate.dev",
    version = "v1",
    kind = "Widget",
    namespaced,
    status = "WidgetStatus"
)]
struct WidgetSpec {
    size: u32,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
struct WidgetStatus {
    ready: bool,
}

fn fake() -> FakeApi {
    FakeApi::builder().crd::<Widget>().build()
}

fn cm(name: &str, value: &str) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        data: Some([("k".to_owned(), value.to_owned())].into()),
        ..Default::default()
    }
}

fn secret(name: &str, app: &str) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some("default".into()),
            labels: Some([("app".to_owned(), app.to_owned())].into()),
            ..Default::default()
        },
        ..Default::default()
    }
}

fn code(err: kube::Error) -> u16 {
    match err {
        kube::Error::Api(status) => status.code,
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test]
async fn configmap_create_get_list_delete() {
    let fake = fake();
    let api: Api<ConfigMap> = Api::namespaced(fake.client(), "ns");
    let created = api
        .create(&PostParams::default(), &cm("a", "1"))
        .await
        .unwrap();
    assert_eq!(created.namespace().as_deref(), Some("ns"));
    assert!(created.uid().is_some() && created.resource_version().is_some());
    assert!(created.creation_timestamp().is_some());
    let again = api.create(&PostParams::default(), &cm("a", "1")).await;
    assert_eq!(code(again.unwrap_err()), 409);
    api.create(&PostParams::default(), &cm("b", "2"))
        .await
        .unwrap();

    assert_eq!(api.get("a").await.unwrap().data, cm("a", "1").data);
    let list = api.list(&ListParams::default()).await.unwrap();
    assert_eq!(
        list.items
            .iter()
            .map(ResourceExt::name_any)
            .collect::<Vec<_>>(),
        ["a", "b"]
    );
    let by_name = api
        .list(&ListParams::default().fields("metadata.name=b"))
        .await
        .unwrap();
    assert_eq!(by_name.items.len(), 1);
    let all: Api<ConfigMap> = Api::all(fake.client());
    assert_eq!(
        all.list(&ListParams::default()).await.unwrap().items.len(),
        2
    );

    api.delete("a", &DeleteParams::default()).await.unwrap();
    assert_eq!(code(api.get("a").await.unwrap_err()), 404);
    assert_eq!(
        code(api.delete("a", &DeleteParams::default()).await.unwrap_err()),
        404
    );
    assert_eq!(fake.list::<ConfigMap>(Some("ns")).len(), 1);
}

#[tokio::test]
async fn server_side_apply_creates_then_updates_and_noop_keeps_version() {
    let fake = fake();
    let api: Api<ConfigMap> = Api::namespaced(fake.client(), "default");
    let pp = PatchParams::apply("tollgate").force();
    let mut desired = cm("gw", "1");
    desired.metadata.labels = Some([("a".to_owned(), "1".to_owned())].into());
    let first = api.patch("gw", &pp, &Patch::Apply(&desired)).await.unwrap();
    assert_eq!(
        first.managed_fields()[0].manager.as_deref(),
        Some("tollgate")
    );

    let other = PatchParams {
        field_manager: Some("kubectl".to_owned()),
        ..PatchParams::default()
    };
    api.patch(
        "gw",
        &other,
        &Patch::Merge(serde_json::json!({"metadata": {"labels": {"b": "2"}}})),
    )
    .await
    .unwrap();

    let second = api
        .patch("gw", &pp, &Patch::Apply(&cm("gw", "2")))
        .await
        .unwrap();
    assert_eq!(second.data.as_ref().unwrap()["k"], "2");
    assert!(
        !second.labels().contains_key("a"),
        "a field the manager stopped applying is removed"
    );
    assert_eq!(second.labels()["b"], "2", "another writer's field is kept");
    assert_ne!(first.resource_version(), second.resource_version());

    let third = api
        .patch("gw", &pp, &Patch::Apply(&cm("gw", "2")))
        .await
        .unwrap();
    assert_eq!(second.resource_version(), third.resource_version());

    let no_manager = api
        .patch("gw", &PatchParams::default(), &Patch::Apply(&cm("gw", "3")))
        .await;
    assert_eq!(code(no_manager.unwrap_err()), 400);
}

#[tokio::test]
async fn status_writes_keep_generation_and_spec_writes_bump_it() {
    let fake = fake();
    let api: Api<Widget> = Api::namespaced(fake.client(), "default");
    let mut w = Widget::new("w", WidgetSpec { size: 1 });
    w.status = Some(WidgetStatus { ready: true });
    let created = api.create(&PostParams::default(), &w).await.unwrap();
    assert_eq!(created.meta().generation, Some(1));
    assert_eq!(
        created.status, None,
        "create ignores status with a status subresource"
    );

    let status = json!({"status": {"ready": true}});
    let patched = api
        .patch_status("w", &PatchParams::default(), &Patch::Merge(&status))
        .await
        .unwrap();
    assert_eq!(patched.status, Some(WidgetStatus { ready: true }));
    assert_eq!(patched.meta().generation, Some(1));

    let applied_status = json!({
        "apiVersion": "test.tollgate.dev/v1", "kind": "Widget",
        "status": {"ready": false}, "spec": {"size": 99},
    });
    let pp = PatchParams::apply("op").force();
    let s = api
        .patch_status("w", &pp, &Patch::Apply(&applied_status))
        .await
        .unwrap();
    assert_eq!(
        (s.spec.size, s.meta().generation),
        (1, Some(1)),
        "status apply ignores spec"
    );

    let spec = json!({"spec": {"size": 2}, "status": {"ready": true}});
    let bumped = api
        .patch("w", &PatchParams::default(), &Patch::Merge(&spec))
        .await
        .unwrap();
    assert_eq!(bumped.meta().generation, Some(2));
    assert_eq!(
        bumped.status,
        Some(WidgetStatus { ready: false }),
        "main writes keep status"
    );
}

#[tokio::test]
async fn label_selected_list_and_watch_see_only_matching_secrets() {
    let fake = fake();
    fake.seed(&secret("x1", "x")).unwrap();
    fake.seed(&secret("y1", "y")).unwrap();
    let api: Api<Secret> = Api::default_namespaced(fake.client());
    let lp = ListParams::default().labels("app in (x,z)");
    let listed = api.list(&lp).await.unwrap();
    assert_eq!(
        listed
            .items
            .iter()
            .map(ResourceExt::name_any)
            .collect::<Vec<_>>(),
        ["x1"]
    );
    let rv = listed.metadata.resource_version.unwrap();

    let wp = WatchParams::default().labels("app=x").timeout(5);
    let mut stream = api.watch(&wp, &rv).await.unwrap().boxed();
    api.create(&PostParams::default(), &secret("y2", "y"))
        .await
        .unwrap();
    api.create(&PostParams::default(), &secret("x2", "x"))
        .await
        .unwrap();
    let mut relabel = secret("x1", "y");
    relabel.metadata.namespace = None;
    api.patch("x1", &PatchParams::default(), &Patch::Merge(&relabel))
        .await
        .unwrap();

    let mut seen = Vec::new();
    while seen.len() < 2 {
        match timeout(WAIT, stream.try_next())
            .await
            .unwrap()
            .unwrap()
            .unwrap()
        {
            WatchEvent::Added(s) => seen.push(format!("added {}", s.name_any())),
            WatchEvent::Deleted(s) => seen.push(format!("deleted {}", s.name_any())),
            WatchEvent::Bookmark(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(seen, ["added x2", "deleted x1"], "x1 stopped matching");
}

/// Skips watcher events until `done` holds for one, bounded by [`WAIT`]; 410s are skipped
/// because the watcher yields them before re-listing.
async fn next_matching<S>(
    stream: &mut S,
    mut done: impl FnMut(&Event<Widget>) -> bool,
) -> Event<Widget>
where
    S: futures_util::Stream<Item = Result<Event<Widget>, watcher::Error>> + Unpin,
{
    timeout(WAIT, async {
        loop {
            let ev = match stream.next().await.unwrap() {
                Ok(ev) => ev,
                // The watcher reports a stale watch and then re-lists by itself.
                Err(watcher::Error::WatchError(s)) if s.code == 410 => continue,
                Err(other) => panic!("watcher failed: {other:?}"),
            };
            if done(&ev) {
                return ev;
            }
        }
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn watcher_over_a_custom_resource_sees_apply_and_delete() {
    let fake = fake();
    fake.seed(&Widget::new("pre", WidgetSpec { size: 0 }))
        .unwrap();
    let api: Api<Widget> = Api::default_namespaced(fake.client());
    let mut events = watcher(api.clone(), watcher::Config::default()).boxed();
    next_matching(
        &mut events,
        |e| matches!(e, Event::InitApply(w) if w.name_any() == "pre"),
    )
    .await;
    next_matching(&mut events, |e| matches!(e, Event::InitDone)).await;

    api.create(
        &PostParams::default(),
        &Widget::new("w", WidgetSpec { size: 1 }),
    )
    .await
    .unwrap();
    next_matching(
        &mut events,
        |e| matches!(e, Event::Apply(w) if w.spec.size == 1),
    )
    .await;
    let spec = json!({"spec": {"size": 2}});
    api.patch("w", &PatchParams::default(), &Patch::Merge(&spec))
        .await
        .unwrap();
    next_matching(
        &mut events,
        |e| matches!(e, Event::Apply(w) if w.spec.size == 2),
    )
    .await;
    api.delete("w", &DeleteParams::default()).await.unwrap();
    next_matching(
        &mut events,
        |e| matches!(e, Event::Delete(w) if w.name_any() == "w"),
    )
    .await;
}

#[tokio::test]
async fn stale_watch_gets_410_and_the_watcher_relists() {
    let fake = FakeApi::builder()
        .crd::<Widget>()
        .max_watch_timeout(Duration::from_millis(300))
        .build();
    let api: Api<Widget> = Api::namespaced(fake.client(), "a");
    api.create(
        &PostParams::default(),
        &Widget::new("w", WidgetSpec { size: 1 }),
    )
    .await
    .unwrap();
    let old = fake.resource_version().to_string();

    let config = watcher::Config::default().disable_bookmarks();
    let mut events = watcher(api.clone(), config).boxed();
    next_matching(&mut events, |e| matches!(e, Event::InitDone)).await;

    // A change the watch does not select, then compaction: the watcher's version is now stale.
    let other: Api<Widget> = Api::namespaced(fake.client(), "b");
    other
        .create(
            &PostParams::default(),
            &Widget::new("o", WidgetSpec { size: 1 }),
        )
        .await
        .unwrap();
    fake.compact();

    let mut raw = api
        .watch(&WatchParams::default(), &old)
        .await
        .unwrap()
        .boxed();
    match timeout(WAIT, raw.try_next()).await.unwrap().unwrap() {
        Some(WatchEvent::Error(status)) => assert_eq!(status.code, 410),
        other => panic!("expected a 410 event, got {other:?}"),
    }

    // After the bounded watch ends, the re-watch gets 410 and the watcher lists again.
    next_matching(&mut events, |e| matches!(e, Event::Init)).await;
    next_matching(&mut events, |e| matches!(e, Event::InitDone)).await;
    api.create(
        &PostParams::default(),
        &Widget::new("n", WidgetSpec { size: 3 }),
    )
    .await
    .unwrap();
    next_matching(
        &mut events,
        |e| matches!(e, Event::Apply(w) if w.name_any() == "n"),
    )
    .await;
}

#[tokio::test]
async fn write_counter_and_failure_injection() {
    let fake = fake();
    let api: Api<ConfigMap> = Api::default_namespaced(fake.client());
    fake.seed(&cm("seeded", "1")).unwrap();
    api.get("seeded").await.unwrap();
    api.list(&ListParams::default()).await.unwrap();
    assert_eq!(fake.write_count(), 0, "reads and seeding are not writes");

    let path = "/api/v1/namespaces/default/configmaps";
    fake.fail_next(
        Method::POST,
        path,
        2,
        ApiError::new(500, "InternalError", "injected"),
    );
    for _ in 0..2 {
        let err = api
            .create(&PostParams::default(), &cm("a", "1"))
            .await
            .unwrap_err();
        assert_eq!(code(err), 500);
    }
    api.create(&PostParams::default(), &cm("a", "1"))
        .await
        .unwrap();
    fake.fail_next(
        Method::GET,
        &format!("{path}/*"),
        1,
        ApiError::new(403, "Forbidden", "no"),
    );
    assert_eq!(code(api.get("a").await.unwrap_err()), 403);
    api.get("a").await.unwrap();

    assert_eq!(fake.write_count(), 3);
    assert!(
        fake.writes()
            .iter()
            .all(|w| w.method == Method::POST && w.path == path)
    );
    fake.reset_writes();
    assert_eq!(fake.write_count(), 0);
}

#[tokio::test]
async fn lease_replace_checks_the_resource_version() {
    let fake = fake();
    let api: Api<Lease> = Api::namespaced(fake.client(), "kube-system");
    let lease = Lease {
        metadata: ObjectMeta {
            name: Some("tollgate-operator".into()),
            ..Default::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some("pod-a".into()),
            ..Default::default()
        }),
    };
    let mut held = api.create(&PostParams::default(), &lease).await.unwrap();
    let stale = held.clone();
    held.spec.as_mut().unwrap().holder_identity = Some("pod-b".into());
    let taken = api
        .replace("tollgate-operator", &PostParams::default(), &held)
        .await
        .unwrap();
    assert_ne!(taken.resource_version(), stale.resource_version());
    let lost = api
        .replace("tollgate-operator", &PostParams::default(), &stale)
        .await;
    assert_eq!(code(lost.unwrap_err()), 409);
    let got = fake
        .get::<Lease>(Some("kube-system"), "tollgate-operator")
        .unwrap();
    assert_eq!(got.spec.unwrap().holder_identity.as_deref(), Some("pod-b"));
}

#[tokio::test]
async fn finalizers_delay_deletion_and_owners_cascade() {
    let fake = fake();
    let widgets: Api<Widget> = Api::default_namespaced(fake.client());
    let mut w = Widget::new("w", WidgetSpec { size: 1 });
    w.metadata.finalizers = Some(vec!["test/cleanup".into()]);
    let w = widgets.create(&PostParams::default(), &w).await.unwrap();
    let mut child = cm("child", "1");
    child.metadata.owner_references = Some(vec![w.controller_owner_ref(&()).unwrap()]);
    let cms: Api<ConfigMap> = Api::default_namespaced(fake.client());
    cms.create(&PostParams::default(), &child).await.unwrap();

    widgets.delete("w", &DeleteParams::default()).await.unwrap();
    let marked = widgets.get("w").await.unwrap();
    assert!(marked.meta().deletion_timestamp.is_some());
    let clear = json!({"metadata": {"finalizers": null}});
    widgets
        .patch("w", &PatchParams::default(), &Patch::Merge(&clear))
        .await
        .unwrap();
    assert_eq!(code(widgets.get("w").await.unwrap_err()), 404);
    assert_eq!(
        code(cms.get("child").await.unwrap_err()),
        404,
        "owned child cascaded"
    );
}

#[tokio::test]
async fn controller_settles_and_an_unchanged_world_causes_no_writes() {
    let fake = fake();
    let client = fake.client();
    let widgets: Api<Widget> = Api::default_namespaced(client.clone());
    let cms: Api<ConfigMap> = Api::default_namespaced(client.clone());
    widgets
        .create(
            &PostParams::default(),
            &Widget::new("w", WidgetSpec { size: 7 }),
        )
        .await
        .unwrap();

    async fn reconcile(w: Arc<Widget>, cms: Arc<Api<ConfigMap>>) -> Result<Action, kube::Error> {
        let mut child = cm(&w.name_any(), &w.spec.size.to_string());
        child.metadata.owner_references = w.controller_owner_ref(&()).map(|o| vec![o]);
        let pp = PatchParams::apply("widget-controller").force();
        cms.patch(&w.name_any(), &pp, &Patch::Apply(&child)).await?;
        Ok(Action::await_change())
    }
    let controller = Controller::new(widgets.clone(), watcher::Config::default())
        .owns(cms.clone(), watcher::Config::default())
        .run(
            reconcile,
            |_, _, _| Action::await_change(),
            Arc::new(cms.clone()),
        )
        .for_each(|_| async {});
    let handle = tokio::spawn(controller);

    let wait_for = |value: &'static str| {
        let fake = fake.clone();
        async move {
            timeout(WAIT, async {
                while fake
                    .get::<ConfigMap>(Some("default"), "w")
                    .and_then(|c| c.data)
                    .map(|d| d["k"].clone())
                    .as_deref()
                    != Some(value)
                {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            })
            .await
            .unwrap();
        }
    };
    wait_for("7").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    fake.reset_writes();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(fake.writes(), [], "a settled controller does not write");

    let spec = json!({"spec": {"size": 8}});
    widgets
        .patch("w", &PatchParams::default(), &Patch::Merge(&spec))
        .await
        .unwrap();
    wait_for("8").await;
    handle.abort();
}
