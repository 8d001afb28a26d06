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

use std::sync::LazyLock;

use redis::Script;

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

-- Removes the index members of keys whose deadline (`now_ms`, a string) has passed, at most
-- `limit` of them.
local function prune(idx, exp, now_ms, limit)
  local dead = redis.call('ZRANGE', exp, '-inf', now_ms, 'BYSCORE', 'LIMIT', '0', limit)
  if #dead > 0 then
    redis.call('ZREM', idx, unpack(dead))
    redis.call('ZREM', exp, unpack(dead))
  end
  return #dead
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
end

-- What SET, CREATE and SET_IF_VERSION do once they decided to write: the entry from KEYS
-- (value hash, index, expiry set, version counter) and ARGV (member, value, modified ns,
-- TTL in ms or '', prune limit), then a prune. Returns 1.
local function write_entry()
  local now = now_us()
  write(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2], ARGV[3], ARGV[4], now, next_version(KEYS[4]))
  prune(KEYS[2], KEYS[3], int(math.floor(now / 1000)), ARGV[5])
  return 1
end
"#;

fn script(body: &str) -> Script {
    let mut code = String::with_capacity(PRELUDE.len() + body.len());
    code.push_str(PRELUDE);
    code.push_str(body);
    Script::new(&code)
}

/// `KEYS`: value hash, index, expiry set, version counter. `ARGV`: member, value, modified
/// ns, TTL in ms or `""`, prune limit.
pub(crate) static SET: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
return write_entry()
"#,
    )
});

/// `KEYS`: index, expiry set, version counter, then one value hash per entry. `ARGV`:
/// modified ns, TTL in ms or `""`, prune limit, then member and value per entry. One
/// version for the batch: each key gets it once (a key given twice keeps its last value).
pub(crate) static SET_MANY: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
local now = now_us()
local version = next_version(KEYS[3])
local n = #KEYS - 3
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
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
return write_entry()
"#,
    )
});

/// `KEYS` as [`SET`]; `ARGV` as [`SET`], then the expected version as `r<counter>` or
/// `m<modified>` (an entry from before versions). Writes only if the live entry has that
/// version; returns 1 if it wrote.
pub(crate) static SET_IF_VERSION: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
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

/// `KEYS` as [`SET`]. `ARGV`: member, delta, modified ns, prune limit. `HINCRBY` does the
/// arithmetic on 64-bit integers (Lua's numbers are doubles) and refuses a value that is
/// not an integer, or a sum outside 64 bits, before changing anything. Returns
/// `{"ok", new value}`, or `{"refused", stored value, the server's error}` for the driver
/// to say why. A new key gets no TTL; an existing one keeps its own (`HSET` of other fields
/// leaves it). `HINCRBY` is the script's first write, so a refusal wrote nothing.
pub(crate) static INCREMENT: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
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
prune(KEYS[2], KEYS[3], int(math.floor(now_us() / 1000)), ARGV[4])
return {'ok', redis.call('HGET', KEYS[1], 'v')}
"#,
    )
});

/// `KEYS`: value hash, index, expiry set. `ARGV`: member. Returns 1 if a live entry was
/// removed (`DEL` does not count an expired key).
pub(crate) static DELETE: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
local n = redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
return n
"#,
    )
});

/// `KEYS`: index, expiry set, then one value hash per key. `ARGV`: the members. Returns how
/// many live entries were removed; a key given twice counts once.
pub(crate) static DELETE_MANY: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
local removed = 0
for i = 1, #ARGV do
  removed = removed + redis.call('DEL', KEYS[i + 2])
  redis.call('ZREM', KEYS[1], ARGV[i])
  redis.call('ZREM', KEYS[2], ARGV[i])
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
/// removed by writes and the pruner.
pub(crate) static LIST: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
local members = redis.call('ZRANGE', KEYS[1], ARGV[1], ARGV[2], 'BYLEX')
if #members == 0 then
  return members
end
local now_ms = math.floor(now_us() / 1000)
local live = {}
local chunk = 256
for first = 1, #members, chunk do
  local last = math.min(first + chunk - 1, #members)
  local deadlines = redis.call('ZMSCORE', KEYS[2], unpack(members, first, last))
  for i = first, last do
    local d = deadlines[i - first + 1]
    if not d or tonumber(d) > now_ms then
      live[#live + 1] = members[i]
    end
  end
end
return live
"#,
    )
});

/// `KEYS`: index, expiry set. `ARGV`: `ZRANGE BYLEX` min and max, limit. Returns
/// `{more, {members}}`: at most `limit` live members of the range in byte order, and 1 if
/// another live member follows them. Reads the index `CHUNK` members at a time with
/// `ZRANGE ... BYLEX ... LIMIT`, so a page costs what it returns (and the expired members
/// not yet pruned among them), never the rest of the range.
pub(crate) static LIST_PAGE: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
local chunk = 256
local limit = tonumber(ARGV[3])
local min = ARGV[1]
local now_ms = math.floor(now_us() / 1000)
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

/// `KEYS`: index, expiry set. `ARGV`: limit. Returns how many expired members were removed.
pub(crate) static PRUNE: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
return prune(KEYS[1], KEYS[2], int(math.floor(now_us() / 1000)), ARGV[1])
"#,
    )
});
