//! The Redis backend: every check-and-reserve is one Lua script, which Redis runs atomically,
//! so replicas sharing a Redis admit exactly what one gateway would. Counters are Redis
//! integers (`INCRBY`); scripts compare them as Lua numbers, exact below 2^53 (nine million
//! USD in nano-USD). Windows are hashes of bucket index → amount; bucket indices are computed
//! here, not in Lua, so no float division touches them.

use std::time::Duration;

use redis::{
    Script,
    aio::{ConnectionManager, ConnectionManagerConfig},
};

use super::{
    Admission, StateError, Window,
    bucket::{BUCKETS_SCRIPT, BucketOp, Level, Taken},
};

const COUNTER_ADD: &str = r"
local total = redis.call('INCRBY', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return total
";

const COUNTER_RESERVE: &str = r"
local total = tonumber(redis.call('GET', KEYS[1]) or '0')
local amount = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
if total >= limit or total + amount > limit then
  return {0, total}
end
total = redis.call('INCRBY', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return {1, total}
";

const COUNTER_RAISE: &str = r"
local total = tonumber(redis.call('GET', KEYS[1]) or '0')
local floor = tonumber(ARGV[1])
if floor > total then
  redis.call('SET', KEYS[1], ARGV[1])
  total = floor
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return total
";

/// ARGV: mode (`get`, `add`, `reserve`), amount, limit, oldest bucket, target bucket, ttl.
/// Drops buckets older than the window, then reads, adds to the target bucket, or
/// reserves in it when the sum allows.
const WINDOW: &str = r"
local mode = ARGV[1]
local amount = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
local oldest = tonumber(ARGV[4])
local target = ARGV[5]
local total = 0
local fields = redis.call('HGETALL', KEYS[1])
for i = 1, #fields, 2 do
  if tonumber(fields[i]) < oldest then
    redis.call('HDEL', KEYS[1], fields[i])
  else
    total = total + tonumber(fields[i + 1])
  end
end
if mode == 'get' then
  return {1, total}
end
if mode == 'reserve' and (total >= limit or total + amount > limit) then
  return {0, total}
end
if tonumber(target) >= oldest then
  redis.call('HINCRBY', KEYS[1], target, ARGV[2])
  total = total + amount
  redis.call('PEXPIRE', KEYS[1], ARGV[6])
end
return {1, total}
";

/// Counters, windows and entries in a shared Redis.
pub struct RedisState {
    conn: ConnectionManager,
    timeout: Duration,
    prefix: String,
    scripts: Scripts,
}

struct Scripts {
    counter_add: Script,
    counter_reserve: Script,
    counter_raise: Script,
    window: Script,
    buckets: Script,
}

impl std::fmt::Debug for RedisState {
    // The connection holds the URL, which may hold a password: print neither.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisState")
            .field("timeout", &self.timeout)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

fn redis_error(e: &redis::RedisError) -> StateError {
    // The kind and the server's detail; never the URL (it may carry a password).
    StateError::Redis(format!(
        "{:?}{}",
        e.kind(),
        e.detail().map(|d| format!(": {d}")).unwrap_or_default()
    ))
}

impl RedisState {
    /// A store that connects on first use and reconnects after failures; every operation
    /// (connecting included) gives up after `timeout`.
    pub fn new(url: &str, timeout: Duration, prefix: &str) -> Result<Self, StateError> {
        let client = redis::Client::open(url)
            .map_err(|_| StateError::Redis("the redis URL is not valid".to_owned()))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1);
        let conn =
            ConnectionManager::new_lazy_with_config(client, config).map_err(|e| redis_error(&e))?;
        Ok(Self {
            conn,
            timeout,
            prefix: prefix.to_owned(),
            scripts: Scripts {
                counter_add: Script::new(COUNTER_ADD),
                counter_reserve: Script::new(COUNTER_RESERVE),
                counter_raise: Script::new(COUNTER_RAISE),
                window: Script::new(WINDOW),
                buckets: Script::new(BUCKETS_SCRIPT),
            },
        })
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    /// Runs `op` on a clone of the shared connection, bounded by the timeout.
    async fn run<T, F, Fut>(&self, op: F) -> Result<T, StateError>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        match tokio::time::timeout(self.timeout, op(self.conn.clone())).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(redis_error(&e)),
            Err(_) => Err(StateError::Timeout(self.timeout)),
        }
    }

    pub(super) async fn counter_get(&self, key: &str) -> Result<i64, StateError> {
        let key = self.key(key);
        let value: Option<i64> = self
            .run(|mut c| async move { redis::cmd("GET").arg(&key).query_async(&mut c).await })
            .await?;
        Ok(value.unwrap_or(0))
    }

    pub(super) async fn counter_add(
        &self,
        key: &str,
        amount: i64,
        ttl_ms: u64,
    ) -> Result<i64, StateError> {
        let key = self.key(key);
        let script = &self.scripts.counter_add;
        self.run(|mut c| async move {
            script
                .key(&key)
                .arg(amount)
                .arg(ttl_ms.max(1))
                .invoke_async(&mut c)
                .await
        })
        .await
    }

    pub(super) async fn counter_reserve(
        &self,
        key: &str,
        amount: i64,
        limit: i64,
        ttl_ms: u64,
    ) -> Result<Admission, StateError> {
        let key = self.key(key);
        let script = &self.scripts.counter_reserve;
        let (granted, total): (i64, i64) = self
            .run(|mut c| async move {
                script
                    .key(&key)
                    .arg(amount)
                    .arg(limit)
                    .arg(ttl_ms.max(1))
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        Ok(admission(granted, total))
    }

    pub(super) async fn counter_raise(
        &self,
        key: &str,
        floor: i64,
        ttl_ms: u64,
    ) -> Result<i64, StateError> {
        let key = self.key(key);
        let script = &self.scripts.counter_raise;
        self.run(|mut c| async move {
            script
                .key(&key)
                .arg(floor)
                .arg(ttl_ms.max(1))
                .invoke_async(&mut c)
                .await
        })
        .await
    }

    async fn window(
        &self,
        mode: &str,
        key: &str,
        (amount, limit): (i64, i64),
        window: Window,
        (at_ms, now_ms): (u64, u64),
    ) -> Result<Admission, StateError> {
        let key = self.key(key);
        let script = &self.scripts.window;
        let (granted, total): (i64, i64) = self
            .run(|mut c| async move {
                script
                    .key(&key)
                    .arg(mode)
                    .arg(amount)
                    .arg(limit)
                    .arg(window.oldest(now_ms))
                    .arg(window.bucket(at_ms))
                    .arg(window.len_ms.max(1))
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        Ok(admission(granted, total))
    }

    pub(super) async fn window_get(
        &self,
        key: &str,
        window: Window,
        now_ms: u64,
    ) -> Result<i64, StateError> {
        let result = self
            .window("get", key, (0, 0), window, (now_ms, now_ms))
            .await?;
        Ok(result.total())
    }

    pub(super) async fn window_add(
        &self,
        key: &str,
        amount: i64,
        window: Window,
        at_ms: u64,
        now_ms: u64,
    ) -> Result<i64, StateError> {
        let result = self
            .window("add", key, (amount, 0), window, (at_ms, now_ms))
            .await?;
        Ok(result.total())
    }

    pub(super) async fn window_reserve(
        &self,
        key: &str,
        amount: i64,
        limit: i64,
        window: Window,
        now_ms: u64,
    ) -> Result<Admission, StateError> {
        self.window("reserve", key, (amount, limit), window, (now_ms, now_ms))
            .await
    }

    /// One script for every bucket of a request, so the all-or-none take is atomic.
    pub(super) async fn buckets(
        &self,
        ops: &[BucketOp],
        take: bool,
        now_ms: u64,
    ) -> Result<Taken, StateError> {
        let mut invocation = self.scripts.buckets.prepare_invoke();
        invocation
            .arg(if take { "take" } else { "adjust" })
            .arg(now_ms);
        for op in ops {
            invocation
                .key(self.key(&op.key))
                .arg(op.rate())
                .arg(op.units());
        }
        let reply: Vec<i64> = self
            .run(|mut c| async move { invocation.invoke_async(&mut c).await })
            .await?;
        let Some((granted, units)) = reply.split_first() else {
            return Err(StateError::Redis(
                "the bucket script answered nothing".to_owned(),
            ));
        };
        if units.len() != ops.len() {
            return Err(StateError::Redis(
                "the bucket script answered another number of buckets".to_owned(),
            ));
        }
        Ok(Taken {
            granted: *granted == 1,
            levels: ops
                .iter()
                .zip(units)
                .map(|(op, units)| Level {
                    units: *units,
                    per_minute: op.per_minute,
                })
                .collect(),
        })
    }

    pub(super) async fn kv_get(&self, key: &str) -> Result<Option<Vec<u8>>, StateError> {
        let key = self.key(key);
        self.run(|mut c| async move { redis::cmd("GET").arg(&key).query_async(&mut c).await })
            .await
    }

    pub(super) async fn kv_set(
        &self,
        key: &str,
        value: &[u8],
        ttl_ms: u64,
    ) -> Result<(), StateError> {
        let key = self.key(key);
        self.run(|mut c| async move {
            redis::cmd("SET")
                .arg(&key)
                .arg(value)
                .arg("PX")
                .arg(ttl_ms.max(1))
                .query_async(&mut c)
                .await
        })
        .await
    }

    pub(super) async fn kv_delete(&self, key: &str) -> Result<bool, StateError> {
        let key = self.key(key);
        let removed: i64 = self
            .run(|mut c| async move { redis::cmd("DEL").arg(&key).query_async(&mut c).await })
            .await?;
        Ok(removed > 0)
    }
}

fn admission(granted: i64, total: i64) -> Admission {
    if granted == 1 {
        Admission::Granted { total }
    } else {
        Admission::Denied { total }
    }
}
