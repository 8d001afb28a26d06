//! The Lua scripts that keep an entry, the index and the expiry set in step.
//!
//! Redis runs a script atomically, so no reader ever sees an entry without its index member
//! or the other way round, and a bulk write is all-or-nothing for readers. Every script
//! touches only keys of one contract (one cluster slot, see [`crate::keys`]).
//!
//! # Time
//! Deadlines come from the server's clock (`TIME`, in microseconds), which is the clock
//! Redis expires keys by. A TTL of `d` ms set at server time `t` gets the deadline
//! `D = ceil(t + d)` in whole milliseconds, and the hash is given `PEXPIREAT D - 1`: Redis
//! keeps a key while `now <= expire-at`, so the entry is live exactly while `now < D`
//! (never early, at most the rounding to the next millisecond late). The index uses the
//! same rule, so `list` agrees with `get`.
//!
//! # Versions
//! Every script that writes an entry takes the next number of the contract's counter
//! (`INCR` on [`Namespace::version_key`](crate::keys::Namespace::version_key), in the same
//! script, so atomically) and stores it in the entry's `r` field: the entry's version.
//! The counter is never reset, so a key deleted and written again gets a new number. An
//! entry written before versions existed has no `r`; its version is its `m` (modified)
//! field, tagged so that it can never equal a counter value (see `driver::version_of`).
//!
//! # The change log: the rule for every write script
//! Watches read the contract's change log (see [`crate::changelog`]), which only scripts
//! write: **every script that changes an entry logs each change in the same script**, so a
//! change and its log entry are one atomic step and per-key order is the order of the
//! writes. Concretely, a write script
//! - gets the log's two keys as its **last two `KEYS`** and the history length as its
//!   **last `ARGV`** (the Rust side appends them with [`log_args`], after everything else),
//! - calls `log_from_args()` before it changes anything, and
//! - calls `changed(kind, member)` once per entry it changes, in the order the changes take
//!   effect: `'p'` for a key that now has a value, `'d'` for a live entry removed on
//!   request, `'e'` for an expired entry reclaimed. The helpers do it for what they change:
//!   `write` (a put), `remove` (a delete, or an expiry if the entry had expired) and `prune`
//!   (expiries). A script that changes an entry some other way calls `changed` itself (as
//!   `INCREMENT` does); a script that forgot `log_from_args` fails on its first change
//!   instead of writing unlogged.
//!
//! `changed` increments `hodor:{E}:s` and appends `<seq>-0` to the stream `hodor:{E}:w`,
//! trimmed to about the history length (`MAXLEN ~`, which trims whole nodes and costs
//! O(1) per append). A history length of 0 (`watch_history: 0`) counts the change but logs
//! nothing: watchers in other processes then see the gap and resync, instead of missing
//! the change. (The log's `seq` is not the entries' version: a `set_many` gives all its
//! entries one version, while each of its changes is an event of its own.)

use std::sync::LazyLock;

use redis::{Script, ScriptInvocation};

use crate::keys::Namespace;

/// Shared helpers, prepended to every script.
const PRELUDE: &str = r#"
local function now_us()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end

-- An integral number as a decimal string. '%d' prints through a C long: exact for every
-- time and deadline here (below 2^53), and several times cheaper for the server than
-- '%.0f', which formats a double digit by digit. Strings also spare Redis formatting the
-- number itself when it becomes a command argument.
local function int(n)
  return string.format('%d', n)
end

-- The change log (see the module docs): set by log_from_args, used by changed.
local LOG = nil

-- Reads the log's keys and history length: the last two KEYS and the last ARGV.
local function log_from_args()
  LOG = {seq = KEYS[#KEYS - 1], stream = KEYS[#KEYS], keep = ARGV[#ARGV]}
end

-- Logs one change of `member`: 'p' put, 'd' deleted, 'e' expired.
local function changed(kind, member)
  if not LOG then
    error('hodor: a script changed an entry without logging it (call log_from_args first)')
  end
  local seq = redis.call('INCR', LOG.seq)
  LOG.last = seq
  if LOG.keep == '0' then
    -- Counted, not logged: a watcher elsewhere sees the gap and resyncs.
    return
  end
  local added = redis.pcall('XADD', LOG.stream, 'MAXLEN', '~', LOG.keep,
    int(seq) .. '-0', 'k', member, 't', kind)
  if type(added) == 'table' and added.err then
    -- The counter is behind the log (it was deleted or restored apart from the log): move
    -- it past the log's last id.
    local info = redis.call('XINFO', 'STREAM', LOG.stream)
    local last = 0
    for i = 1, #info - 1, 2 do
      if info[i] == 'last-generated-id' then
        last = tonumber(string.match(info[i + 1], '^(%d+)')) or 0
      end
    end
    seq = last + 1
    LOG.last = seq
    redis.call('SET', LOG.seq, int(seq))
    redis.call('XADD', LOG.stream, 'MAXLEN', '~', LOG.keep,
      int(seq) .. '-0', 'k', member, 't', kind)
  end
end

-- The `seq` of the last change: the counter, or the log's last entry if the counter is
-- behind it (deleted or restored apart from the log).
local function last_seq(seq_key, log_key)
  local seq = tonumber(redis.call('GET', seq_key) or '0') or 0
  local top = redis.call('XREVRANGE', log_key, '+', '-', 'COUNT', 1)
  if #top > 0 then
    local at = tonumber(string.match(top[1][1], '^(%d+)')) or 0
    if at > seq then
      seq = at
    end
  end
  return seq
end

-- Removes the index members of keys whose deadline (`now_ms`, a string) has passed, at most
-- `limit` of them, logging each as expired.
local function prune(idx, exp, now_ms, limit)
  local dead = redis.call('ZRANGE', exp, '-inf', now_ms, 'BYSCORE', 'LIMIT', '0', limit)
  if #dead > 0 then
    redis.call('ZREM', idx, unpack(dead))
    redis.call('ZREM', exp, unpack(dead))
    for i = 1, #dead do
      changed('e', dead[i])
    end
  end
  return #dead
end

-- Removes one entry and its index members; returns 1 if a live entry was removed (DEL does
-- not count an expired key). Logs a delete, or an expiry if only an expired entry's index
-- members were left.
local function remove(vkey, idx, exp, member)
  local live = redis.call('DEL', vkey)
  local listed = redis.call('ZREM', idx, member)
  redis.call('ZREM', exp, member)
  if live == 1 then
    changed('d', member)
  elseif listed == 1 then
    changed('e', member)
  end
  return live
end

-- Whether no deadline in `exp` has passed at `now_ms`: then every index member is live, and
-- nothing needs its deadline looked up (the common case, where writes and the pruner keep
-- the index clean). The earliest deadline decides, so this is one O(log n) read.
local function none_due(exp, now_ms)
  local first = redis.call('ZRANGE', exp, 0, 0, 'WITHSCORES')
  return #first == 0 or tonumber(first[2]) > now_ms
end

-- The members of `members` whose deadline (in `exp`) has not passed.
local function live_members(exp, members)
  if #members == 0 then
    return members
  end
  local now_ms = math.floor(now_us() / 1000)
  if none_due(exp, now_ms) then
    return members
  end
  local live = {}
  local chunk = 256
  for first = 1, #members, chunk do
    local last = math.min(first + chunk - 1, #members)
    local deadlines = redis.call('ZMSCORE', exp, unpack(members, first, last))
    for i = first, last do
      local d = deadlines[i - first + 1]
      if not d or tonumber(d) > now_ms then
        live[#live + 1] = members[i]
      end
    end
  end
  return live
end

-- The next number of the contract's write counter: the version of what a script writes.
local function next_version(counter)
  return int(redis.call('INCR', counter))
end

-- Replaces one entry (value, modified time, TTL and version) and its index members.
--
-- Each redis.call costs the server more than the work of most commands here, so this issues
-- only the ones the case needs, relying on two invariants every script keeps: a hash that
-- exists has its member in the index, and it has the field 'e', a server-side expiry and a
-- member in the expiry set exactly when it has a TTL. HSET returns how many of the fields it
-- was given were new, so "every one" means the hash did not exist (or had expired: Redis
-- expires a key before writing it), and only then is the member added to the index. (An
-- entry written before versions lacks 'r': HSET then counts one new field, not all.)
--   - With a TTL, HSET overwrites all four fields, PEXPIREAT replaces any old expiry and
--     ZADD any old deadline.
--   - Without one, a new hash may follow an expired one whose deadline is still in the
--     expiry set (the pruner has not reached it), and an old hash may have had a TTL (HDEL
--     'e' says so): either way its deadline goes, or a prune would later take the member out
--     of the index, and an old TTL is cleared with PERSIST.
local function write(vkey, idx, exp, member, value, modified, ttl, now, version)
  local created
  if ttl == '' then
    created = redis.call('HSET', vkey, 'v', value, 'm', modified, 'r', version) == 3
    if created or redis.call('HDEL', vkey, 'e') == 1 then
      if not created then
        redis.call('PERSIST', vkey)
      end
      redis.call('ZREM', exp, member)
    end
  else
    local now_ms = math.floor(now / 1000)
    local deadline = math.floor((now + tonumber(ttl) * 1000 + 999) / 1000)
    -- PEXPIREAT at or before the current millisecond would delete the key at once.
    local at = math.max(deadline - 1, now_ms + 1)
    deadline = int(at + 1)
    created = redis.call('HSET', vkey, 'v', value, 'm', modified, 'e', deadline, 'r', version) == 4
    redis.call('PEXPIREAT', vkey, int(at))
    redis.call('ZADD', exp, deadline, member)
  end
  if created then
    redis.call('ZADD', idx, '0', member)
  end
  changed('p', member)
end

-- What SET, CREATE and SET_IF_VERSION do once they decided to write: the entry from KEYS
-- (value hash, index, expiry set, version counter; the log's last) and ARGV (member, value,
-- modified ns, TTL in ms or '', prune limit; the history length last), then, on every
-- PRUNE_EVERY-th change of the contract, a prune. Returns 1.
--
-- Why not a prune on every write: looking for due members is a redis.call that almost
-- always finds nothing, and it cost about a tenth of the whole script. One in
-- PRUNE_EVERY still keeps up with what writes add: in those PRUNE_EVERY changes, single-key
-- writes gave at most PRUNE_EVERY members a deadline, and the prune removes up to the
-- limit (far more) of those that are due. `list` never depends on it: it filters what is
-- due and not yet pruned.
local PRUNE_EVERY = 16
local function write_entry()
  local now = now_us()
  write(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2], ARGV[3], ARGV[4], now, next_version(KEYS[4]))
  if LOG.last % PRUNE_EVERY == 0 then
    prune(KEYS[2], KEYS[3], int(math.floor(now / 1000)), ARGV[5])
  end
  return 1
end
"#;

/// Appends the change log's keys and the history length `keep` to a write script's
/// invocation: its last two `KEYS` and last `ARGV`, so call it after adding everything else.
pub(crate) fn log_args(invocation: &mut ScriptInvocation<'_>, namespace: &Namespace, keep: u64) {
    invocation
        .key(namespace.seq_key())
        .key(namespace.log_key())
        .arg(keep);
}

fn script(body: &str) -> Script {
    let mut code = String::with_capacity(PRELUDE.len() + body.len());
    code.push_str(PRELUDE);
    code.push_str(body);
    Script::new(&code)
}

/// `KEYS`: value hash, index, expiry set, version counter, the log's. `ARGV`: member,
/// value, modified ns, TTL in ms or `""`, prune limit, history length.
pub(crate) static SET: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
log_from_args()
return write_entry()
"#,
    )
});

/// `KEYS`: index, expiry set, version counter, one value hash per entry, the log's.
/// `ARGV`: modified ns, TTL in ms or `""`, prune limit, member and value per entry, history
/// length. One version for the batch: each key gets it once (a key given twice keeps its
/// last value).
pub(crate) static SET_MANY: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
log_from_args()
local now = now_us()
local version = next_version(KEYS[3])
local n = #KEYS - 5
for i = 1, n do
  write(KEYS[i + 3], KEYS[1], KEYS[2], ARGV[2 * i + 2], ARGV[2 * i + 3], ARGV[1], ARGV[2], now,
    version)
end
prune(KEYS[1], KEYS[2], int(math.floor(now / 1000)), ARGV[3])
return n
"#,
    )
});

/// `KEYS` and `ARGV` as [`SET`]. Writes only if the key has no live entry (Redis has
/// already dropped an expired hash by the time the script looks); returns 1 if it wrote.
pub(crate) static CREATE: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
log_from_args()
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
return write_entry()
"#,
    )
});

/// `KEYS` as [`SET`]; `ARGV` as [`SET`] with the expected version as `r<counter>` or
/// `m<modified>` (an entry from before versions) before the history length. Writes only if
/// the live entry has that version; returns 1 if it wrote.
pub(crate) static SET_IF_VERSION: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
log_from_args()
local f = redis.call('HMGET', KEYS[1], 'r', 'm')
local current = false
if f[1] then
  current = 'r' .. f[1]
elseif f[2] then
  current = 'm' .. f[2]
end
if current ~= ARGV[6] then
  return 0
end
return write_entry()
"#,
    )
});

/// `KEYS` as [`SET`]. `ARGV`: member, delta, modified ns, prune limit, history length.
/// `HINCRBY` does the
/// arithmetic on 64-bit integers (Lua's numbers are doubles) and refuses a value that is
/// not an integer, or a sum outside 64 bits, before changing anything. Returns
/// `{"ok", new value}`, or `{"refused", stored value, the server's error}` for the driver
/// to say why. A new key gets no TTL; an existing one keeps its own (`HSET` of other fields
/// leaves it). `HINCRBY` is the script's first write, so a refusal wrote nothing.
pub(crate) static INCREMENT: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
log_from_args()
local existed = redis.call('EXISTS', KEYS[1])
local sum = redis.pcall('HINCRBY', KEYS[1], 'v', ARGV[2])
if type(sum) == 'table' and sum.err then
  return {'refused', redis.call('HGET', KEYS[1], 'v') or '', sum.err}
end
redis.call('HSET', KEYS[1], 'm', ARGV[3], 'r', next_version(KEYS[4]))
if existed == 0 then
  redis.call('ZREM', KEYS[3], ARGV[1])
  redis.call('ZADD', KEYS[2], 0, ARGV[1])
end
changed('p', ARGV[1])
prune(KEYS[2], KEYS[3], int(math.floor(now_us() / 1000)), ARGV[4])
return {'ok', redis.call('HGET', KEYS[1], 'v')}
"#,
    )
});

/// `KEYS`: value hash, index, expiry set, the log's. `ARGV`: member, history length.
/// Returns 1 if a live entry was removed (`DEL` does not count an expired key).
pub(crate) static DELETE: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
log_from_args()
return remove(KEYS[1], KEYS[2], KEYS[3], ARGV[1])
"#,
    )
});

/// `KEYS`: index, expiry set, one value hash per key, the log's. `ARGV`: the members,
/// history length. Returns how many live entries were removed; a key given twice counts
/// once.
pub(crate) static DELETE_MANY: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
log_from_args()
local removed = 0
for i = 1, #ARGV - 1 do
  removed = removed + remove(KEYS[i + 2], KEYS[1], KEYS[2], ARGV[i])
end
return removed
"#,
    )
});

/// `KEYS`: value hashes. Returns their values in order, nil where missing.
pub(crate) static GET_MANY: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
local values = {}
for i = 1, #KEYS do
  values[i] = redis.call('HGET', KEYS[i], 'v')
end
return values
"#,
    )
});

/// `KEYS`: value hash. Returns `{size, modified ns, deadline ms or nil, version or nil}`,
/// or nil. (`false` stands for a missing field: a `nil` would end the Lua table there.)
pub(crate) static STAT: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
local f = redis.call('HMGET', KEYS[1], 'm', 'e', 'r')
if not f[1] then
  return false
end
return {redis.call('HSTRLEN', KEYS[1], 'v'), f[1], f[2] or false, f[3] or false}
"#,
    )
});

/// `KEYS`: index, expiry set. `ARGV`: `ZRANGE BYLEX` min and max. Returns the live members
/// in that range, in byte order. Reads only: members of expired keys are skipped here and
/// removed by writes and the pruner. The driver runs it only when some deadline has passed:
/// otherwise every member is live and one `ZRANGE` answers (see `RedisDriver::list`).
pub(crate) static LIST: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
return live_members(KEYS[2], redis.call('ZRANGE', KEYS[1], ARGV[1], ARGV[2], 'BYLEX'))
"#,
    )
});

/// `KEYS`: index, expiry set. `ARGV`: `ZRANGE BYLEX` min and max, limit. Returns
/// `{more, {members}}`: at most `limit` live members of the range in byte order, and 1 if
/// another live member follows them. When no deadline has passed, that is one
/// `ZRANGE ... BYLEX ... LIMIT` of `limit + 1` members; otherwise it reads the index
/// `CHUNK` members at a time and skips the expired ones. Either way a page costs what it
/// returns (and the expired members not yet pruned among them), never the rest of the
/// range.
pub(crate) static LIST_PAGE: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
local limit = tonumber(ARGV[3])
local now_ms = math.floor(now_us() / 1000)
if none_due(KEYS[2], now_ms) then
  -- Every member is live: one more than the page says whether another follows. (A limit
  -- past any real page is capped, so that the count stays an integer Redis accepts.)
  local members = redis.call('ZRANGE', KEYS[1], ARGV[1], ARGV[2], 'BYLEX', 'LIMIT', 0,
    int(math.min(limit, 2147483647) + 1))
  if #members > limit then
    members[#members] = nil
    return {1, members}
  end
  return {0, members}
end
local chunk = 256
local min = ARGV[1]
local live = {}
while true do
  local members = redis.call('ZRANGE', KEYS[1], min, ARGV[2], 'BYLEX', 'LIMIT', 0, chunk)
  if #members == 0 then
    return {0, live}
  end
  local deadlines = redis.call('ZMSCORE', KEYS[2], unpack(members))
  for i = 1, #members do
    local d = deadlines[i]
    if not d or tonumber(d) > now_ms then
      if #live == limit then
        return {1, live}
      end
      live[#live + 1] = members[i]
    end
  end
  if #members < chunk then
    return {0, live}
  end
  min = '(' .. members[#members]
end
"#,
    )
});

/// `KEYS`: index, expiry set, the log's. `ARGV`: limit, history length. Returns how many
/// expired members were removed.
pub(crate) static PRUNE: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
log_from_args()
return prune(KEYS[1], KEYS[2], int(math.floor(now_us() / 1000)), ARGV[1])
"#,
    )
});

/// A watch's snapshot. `KEYS`: index, expiry set, the log's. `ARGV`: `ZRANGE BYLEX` min and
/// max. Returns the `seq` of the last change (which the members include), then the live
/// members in that range: one atomic read, so the members are exactly the state after that
/// change.
pub(crate) static SNAPSHOT: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
local members = live_members(KEYS[2], redis.call('ZRANGE', KEYS[1], ARGV[1], ARGV[2], 'BYLEX'))
table.insert(members, 1, int(last_seq(KEYS[3], KEYS[4])))
return members
"#,
    )
});

/// The `seq` of the last change. `KEYS`: the log's.
pub(crate) static SEQ: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
return last_seq(KEYS[1], KEYS[2])
"#,
    )
});

/// Where the change log stands. `KEYS`: the log's. `ARGV`: a seq. Returns the `seq` of the
/// last change and of the first entry after the given one (0 if none).
pub(crate) static LOG_AFTER: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
local first = redis.call('XRANGE', KEYS[2], '(' .. ARGV[1] .. '-0', '+', 'COUNT', 1)
local at = 0
if #first > 0 then
  at = tonumber(string.match(first[1][1], '^(%d+)')) or 0
end
return {last_seq(KEYS[1], KEYS[2]), at}
"#,
    )
});
