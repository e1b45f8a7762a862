//! Token buckets in shared state: rate limits and provider key quotas.
//!
//! A bucket of `per_minute` holds up to `per_minute` tokens (or requests) and refills
//! continuously at `per_minute` per minute, starting full. That is GCRA: the level and its
//! update time say exactly what GCRA's theoretical arrival time says, in a form that
//! settling a reservation (giving tokens back, or charging more) can adjust directly.
//!
//! Amounts are integer *units*: one token is [`UNITS_PER_TOKEN`] units and a bucket refills
//! `per_minute` units per millisecond, so all arithmetic is exact integers (in Redis' Lua
//! too: every value stays below 2^53). An absent bucket is a full one, and a bucket is
//! deleted (or expires) once it would be full again, so idle subjects cost no memory.
//!
//! Several buckets are taken atomically, all or none: a request must fit the route-wide,
//! the team's and the key's limits at once, and one that does not fit takes nothing.

/// Units per token (or request): milliseconds per minute, so refill is `per_minute`
/// units per millisecond.
pub const UNITS_PER_TOKEN: i64 = 60_000;

/// Largest amount of one operation, in tokens; larger ones count as this much.
const MAX_TOKENS: i64 = 1 << 32;

/// Deepest debt a bucket can owe, in units: keeps every value exact in Lua numbers.
const MAX_DEBT: i64 = 1 << 50;

/// One bucket of one operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BucketOp {
    /// The bucket's key.
    pub key: String,
    /// Its limit per minute (at least 1).
    pub per_minute: u32,
    /// Tokens to take (take) or to give back, negative to charge more (adjust).
    pub tokens: i64,
}

impl BucketOp {
    pub(super) fn rate(&self) -> i64 {
        i64::from(self.per_minute.max(1))
    }

    pub(super) fn units(&self) -> i64 {
        self.tokens.clamp(-MAX_TOKENS, MAX_TOKENS) * UNITS_PER_TOKEN
    }
}

/// A bucket's level after an operation (or as it stands, when a take was refused).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Level {
    /// Units in the bucket; negative is debt.
    pub units: i64,
    /// The bucket's limit per minute.
    pub per_minute: u32,
}

impl Level {
    fn rate(self) -> i64 {
        i64::from(self.per_minute.max(1))
    }

    fn capacity(self) -> i64 {
        self.rate() * UNITS_PER_TOKEN
    }

    /// Whole tokens left (0 in debt).
    pub fn remaining(self) -> u64 {
        u64::try_from(self.units.max(0) / UNITS_PER_TOKEN).unwrap_or(0)
    }

    /// Milliseconds until `tokens` fit (0 when they do now). An amount above the whole
    /// limit needs a full bucket.
    pub fn ready_in_ms(self, tokens: u64) -> u64 {
        let needed = i64::try_from(tokens)
            .unwrap_or(MAX_TOKENS)
            .min(MAX_TOKENS)
            .saturating_mul(UNITS_PER_TOKEN)
            .min(self.capacity());
        let deficit = needed - self.units;
        if deficit <= 0 {
            return 0;
        }
        u64::try_from(ceil_div(deficit, self.rate())).unwrap_or(u64::MAX)
    }

    /// Milliseconds until the bucket is full again.
    pub fn full_in_ms(self) -> u64 {
        let deficit = self.capacity() - self.units;
        u64::try_from(ceil_div(deficit.max(0), self.rate())).unwrap_or(u64::MAX)
    }
}

/// `a / b` rounded up, for `a >= 0` and `b > 0` (both far below `i64::MAX` here).
fn ceil_div(a: i64, b: i64) -> i64 {
    a.saturating_add(b - 1) / b
}

/// What a take decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Taken {
    /// Whether every bucket had room (and so all were taken from).
    pub granted: bool,
    /// Each bucket's level, in the order of the operations.
    pub levels: Vec<Level>,
}

/// A stored bucket: its level and when it was last refilled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Stored {
    pub units: i64,
    pub updated_ms: u64,
}

/// The bucket refilled up to `now_ms` (a clock behind the last update refills nothing),
/// capped at the limit; absent means full.
pub(super) fn refill(stored: Option<Stored>, op: &BucketOp, now_ms: u64) -> Stored {
    let capacity = op.rate() * UNITS_PER_TOKEN;
    let Some(mut s) = stored else {
        return Stored {
            units: capacity,
            updated_ms: now_ms,
        };
    };
    if now_ms > s.updated_ms {
        let elapsed = i64::try_from(now_ms - s.updated_ms).unwrap_or(i64::MAX);
        s.units = s.units.saturating_add(elapsed.saturating_mul(op.rate()));
        s.updated_ms = now_ms;
    }
    s.units = s.units.min(capacity);
    s
}

/// Whether `op` fits a bucket at `units`: a full bucket always admits, so an amount larger
/// than the whole limit is served (leaving debt) instead of never.
pub(super) fn fits(units: i64, op: &BucketOp) -> bool {
    units >= op.units().min(op.rate() * UNITS_PER_TOKEN)
}

/// The level after taking (`take`) or adjusting by `op`, kept within exact range.
pub(super) fn apply(units: i64, op: &BucketOp, take: bool) -> i64 {
    let capacity = op.rate() * UNITS_PER_TOKEN;
    let after = if take {
        units.saturating_sub(op.units())
    } else {
        units.saturating_add(op.units())
    };
    after.clamp(-MAX_DEBT, capacity)
}

/// Milliseconds a stored level must be kept: until it would be full again.
pub(super) fn keep_ms(units: i64, op: &BucketOp) -> u64 {
    Level {
        units,
        per_minute: op.per_minute,
    }
    .full_in_ms()
}

/// The Redis script: ARGV = mode (`take` or `adjust`), now, then rate and units per key.
/// Mirrors [`refill`], [`fits`], [`apply`] and [`keep_ms`]; writes integers with `%d`, as
/// Lua's default number format would round them.
pub(super) const BUCKETS_SCRIPT: &str = r"
local take = ARGV[1] == 'take'
local now = tonumber(ARGV[2])
local maxdebt = 1125899906842624
local levels, times = {}, {}
local granted = 1
for i = 1, #KEYS do
  local rate = tonumber(ARGV[1 + 2 * i])
  local units = tonumber(ARGV[2 + 2 * i])
  local cap = rate * 60000
  local state = redis.call('HMGET', KEYS[i], 'l', 't')
  local level = tonumber(state[1]) or cap
  local t = tonumber(state[2]) or now
  if now > t then
    level = level + (now - t) * rate
    t = now
  end
  if level > cap then level = cap end
  levels[i], times[i] = level, t
  if take and level < math.min(units, cap) then granted = 0 end
end
local out = {granted}
for i = 1, #KEYS do
  local rate = tonumber(ARGV[1 + 2 * i])
  local units = tonumber(ARGV[2 + 2 * i])
  local cap = rate * 60000
  local level = levels[i]
  if granted == 1 then
    if take then level = level - units else level = level + units end
    if level > cap then level = cap end
    if level < -maxdebt then level = -maxdebt end
    if level >= cap then
      redis.call('DEL', KEYS[i])
    else
      redis.call('HSET', KEYS[i], 'l', string.format('%d', level), 't', string.format('%d', times[i]))
      local keep = math.floor((cap - level + rate - 1) / rate) + 1000
      redis.call('PEXPIRE', KEYS[i], string.format('%d', keep))
    end
  end
  out[i + 1] = level
end
return out
";

#[cfg(test)]
#[path = "bucket_tests.rs"]
mod tests;
