//! The one list of cases, and the macros built from it.

/// Generates the conformance tests in a driver crate: one `#[test]` per case, named after
/// the case, inside `mod conformance`.
///
/// ```
/// // tests/conformance.rs of a driver crate
/// use hodor_core::clock::ManualClock;
/// use hodor_testkit::{Harness, TestClock};
///
/// struct MyHarness(ManualClock);
///
/// impl Harness for MyHarness {
///     fn open(&self, name: &str) -> hodor_core::Result<hodor_core::Contract> {
///         hodor_memory::open_with_clock(name, Default::default(), self.0.clone().into())
///     }
///     fn clock(&self) -> TestClock {
///         TestClock::Manual(self.0.clone())
///     }
/// }
///
/// hodor_testkit::conformance_tests!(MyHarness(ManualClock::new()));
/// # fn main() {}
/// ```
///
/// `cargo test` then lists `conformance::list_is_sorted_by_bytes`,
/// `conformance::ttl_get_is_not_found_from_the_deadline` and so on, and
/// `cargo test list_` runs only the listing cases. The argument is an expression of a type
/// implementing [`Harness`](crate::Harness), evaluated afresh in every test, so each case
/// gets its own harness (and its own manual clock). Items of the file are in scope.
///
/// To run the suite twice in one file (say with a manual and a real clock), name the
/// module: `conformance_tests!(mod real_time, MyHarness::real())`.
///
/// The model-based case saves the failing sequences it finds to
/// `proptest-regressions/<module>.txt` in the driver crate (check it in); the driver crate
/// needs no dependency on proptest.
#[macro_export]
macro_rules! conformance_tests {
    (mod $module:ident, $harness:expr $(,)?) => {
        $crate::__with_cases!(__conformance_tests!($module, $harness));
    };
    ($harness:expr $(,)?) => {
        $crate::__with_cases!(__conformance_tests!(conformance, $harness));
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_tests {
    (
        ($module:ident, $harness:expr)
        $($group:ident :: $name:ident [$($need:ident),*] : $rule:literal;)*
    ) => {
        /// The hodor conformance suite: one test per case.
        mod $module {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[doc = $rule]
                #[test]
                fn $name() {
                    let harness = $crate::__private::WithRegressions::new(
                        $harness,
                        concat!(
                            env!("CARGO_MANIFEST_DIR"),
                            "/proptest-regressions/",
                            stringify!($module),
                            ".txt"
                        ),
                    );
                    $crate::cases::$name(&harness);
                }
            )*
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __case_functions {
    (() $($group:ident :: $name:ident [$($need:ident),*] : $rule:literal;)*) => {
        $(
            #[doc = $rule]
            pub fn $name(harness: &dyn $crate::Harness) {
                let t = $crate::ctx::Ctx::new(harness, stringify!($name));
                if t.meets(&[$($crate::Need::$need),*]) {
                    $group::$name(&t);
                }
            }
        )*

        /// Every case, in the order the generated tests are defined; run them with
        /// [`run_cases`](crate::run_cases).
        pub const ALL: &[$crate::Case] = &[
            $($crate::Case {
                name: stringify!($name),
                rule: $rule,
                needs: &[$($crate::Need::$need),*],
                run: $name,
            },)*
        ];
    };
}

/// The one list of cases: `module::name [needs]: "the rule it checks";`. Adding a case
/// means writing `pub(crate) fn name(t: &Ctx)` in the module and one line here; `needs`
/// are [`Need`](crate::Need) variants, checked before the case runs.
#[doc(hidden)]
#[macro_export]
macro_rules! __with_cases {
    ($callback:ident ! ($($args:tt)*)) => {
        $crate::$callback! {
            ($($args)*)

            round_trip::round_trip_empty_value []:
                "An empty value is stored and read back as empty.";
            round_trip::round_trip_one_byte_value []:
                "A one-byte value round-trips through get, get_many and stat.";
            round_trip::round_trip_one_mebibyte_value []:
                "A 1 MiB value round-trips byte for byte.";
            round_trip::round_trip_sixteen_mebibyte_value []:
                "A 16 MiB value round-trips byte for byte.";
            round_trip::round_trip_every_byte_value []:
                "A value holding every byte 0..=255 (NUL, invalid UTF-8) round-trips unchanged.";
            round_trip::text_values_round_trip_unchanged []:
                "Values with CR, LF, CRLF, trailing newlines or spaces, a BOM, NUL, or number- or JSON-like text round-trip byte for byte.";
            round_trip::overwrite_replaces_the_value []:
                "set overwrites: the last value written is the one read, under one key.";
            round_trip::overwrite_with_a_shorter_value_leaves_no_tail []:
                "Overwriting with a shorter value leaves nothing of the longer one.";
            round_trip::json_values_round_trip []:
                "set_json/get_json round-trip a typed value; non-JSON bytes are InvalidInput.";

            keys::awkward_keys_round_trip []:
                "Every key in AWKWARD_KEYS is stored and read back as its exact bytes.";
            keys::awkward_keys_are_listed []:
                "Every awkward key is listed, sorted, and lists the keys it is a prefix of.";
            keys::awkward_keys_are_deleted []:
                "Every awkward key is deleted exactly, leaving every other key in place.";
            keys::similar_keys_are_distinct []:
                "Keys differing by case, normalization, whitespace or escaping are distinct.";
            keys::numeric_lookalike_keys_are_distinct []:
                "Keys that read as the same number (`007`, `7`, `+7`, `7.0`; `-0`, `0`) are distinct keys, listed by bytes.";
            keys::longest_keys_with_multibyte_characters_round_trip []:
                "1024-byte keys of 2-, 3- and 4-byte characters, and keys differing only after byte 250..1023, are distinct and round-trip whole.";
            keys::invalid_keys_are_rejected []:
                "Empty, 1025-byte and NUL keys are InvalidKey on every operation, writing nothing.";

            missing::get_missing_is_not_found_naming_the_key []:
                "get of a missing key is NotFound naming the key, contract and driver.";
            missing::stat_missing_is_not_found_naming_the_key []:
                "stat of a missing key is NotFound naming the key, contract and driver.";
            missing::exists_missing_is_false []:
                "exists of a missing key is false, not an error.";
            missing::delete_missing_is_false []:
                "delete of a missing key is Ok(false), not an error, and touches nothing else.";
            missing::delete_is_true_once []:
                "delete returns true for the live entry it removes, then false.";

            list::list_is_a_byte_prefix_not_a_path []:
                "list matches a plain byte prefix: `foo` lists `foo/x`, `foo.bar` and `foobar`.";
            list::list_is_sorted_by_bytes []:
                "list is sorted by bytes: `t-/` before `t/`, uppercase first, UTF-8 by bytes.";
            list::list_has_no_duplicates []:
                "A key written many times, through several contracts, is listed once.";
            list::list_empty_prefix_lists_everything []:
                "list(\"\") returns every live key.";
            list::list_without_match_is_empty []:
                "A prefix that matches nothing lists an empty vector, not an error.";
            list::list_full_key_as_prefix_returns_it []:
                "A key's full name, used as a prefix, lists the key itself.";
            list::list_omits_deleted_keys []:
                "Deleted keys are never listed.";
            list::list_of_ten_thousand_keys_is_complete []:
                "10,000 keys are all listed, in order, with no page lost.";
            list::list_is_complete_across_page_sizes []:
                "Lists of 999, 1000, 1001, 5000 and 5001 keys (and 13,006 in all) are complete, sorted and without repeats.";
            list::list_glob_characters_are_data []:
                "Glob and pattern characters in a prefix (`*?[]%_.`) match only themselves.";
            list::list_prefix_no_key_can_have_is_empty []:
                "A prefix longer than any key, or holding NUL, lists nothing and is no error.";

            paging::list_page_pages_add_up_to_list []:
                "Pages of every size, read cursor to cursor, are exactly the listing: sorted, each page within its limit, the cursor its last key, no key repeated or skipped at a boundary.";
            paging::list_page_starts_strictly_after_any_cursor []:
                "A page starts strictly after its cursor, whether the cursor is a key, no key, a deleted key, before the prefix or past it.";
            paging::list_page_skips_expired_keys [Ttl]:
                "Pages never hold an expired key, and hundreds of expired keys in a row do not end the listing early.";
            paging::pages_see_every_stable_key_once_while_others_change []:
                "While other keys are created and deleted, paging sees every key that stays exactly once, in order.";

            ttl::ttl_get_is_not_found_from_the_deadline [Ttl]:
                "get returns the value strictly before set time + TTL and NotFound from then on.";
            ttl::ttl_exists_is_false_from_the_deadline [Ttl]:
                "exists is true strictly before set time + TTL and false from then on.";
            ttl::ttl_stat_is_not_found_from_the_deadline [Ttl]:
                "stat succeeds strictly before set time + TTL and is NotFound from then on.";
            ttl::ttl_list_omits_keys_from_the_deadline [Ttl]:
                "list shows a key strictly before set time + TTL and never from then on.";
            ttl::ttl_delete_of_an_expired_key_is_false [Ttl]:
                "delete of an expired key returns false: it removes no live entry.";
            ttl::ttl_get_many_is_none_from_the_deadline [Ttl]:
                "get_many answers None for a key from its deadline on.";
            ttl::ttl_set_without_ttl_clears_it [Ttl]:
                "set without a TTL clears an earlier TTL: the entry never expires.";
            ttl::ttl_new_ttl_replaces_the_old [Ttl]:
                "A new TTL replaces the old one, whether longer or shorter.";
            ttl::ttl_cleared_entries_survive_reclamation [Ttl, ManualClock]:
                "Reclaiming expired entries never removes a key rewritten after its old deadline was set (cleared, longer, recreated).";
            ttl::ttl_zero_is_invalid_input []:
                "A TTL of zero is InvalidInput and writes nothing.";
            ttl::ttl_over_the_maximum_is_invalid_input []:
                "A TTL over MAX_TTL is InvalidInput; exactly MAX_TTL is accepted.";
            ttl::ttl_stat_reports_expires_at [Ttl]:
                "stat reports expires_at = set time + TTL, and none once the TTL is cleared.";
            ttl::ttl_sub_millisecond_rounds_up [Ttl, ManualClock]:
                "TTLs are kept to the millisecond, rounded up: 1 ns lives 1 ms.";
            ttl::ttl_expired_key_can_be_set_again [Ttl]:
                "An expired key can be set again, and is then live, listed once, without expiry.";
            ttl::ttl_unsupported_is_an_error [NoTtl]:
                "A driver without TTLs refuses a TTL with Unsupported and stores nothing.";
            ttl::ttl_entries_without_ttl_never_expire [Ttl]:
                "Entries set without a TTL outlive every deadline.";

            stat::stat_size_matches_the_value []:
                "stat size is the value's length in bytes.";
            stat::stat_modified_is_the_set_time []:
                "stat modified is the wall-clock time of the last set; reads leave it alone.";
            stat::stat_modified_moves_forward_on_overwrite []:
                "An overwrite (set or set_many) moves modified forward.";
            stat::stat_without_ttl_has_no_expiry []:
                "An entry set without a TTL reports expires_at None.";
            stat::reads_leave_metadata_unchanged []:
                "get, get_many, exists, stat, list, list_page, get_json and get_or_insert_with of a present key leave modified, expires_at and version as they were: no touch, no sliding TTL.";

            versions::version_changes_on_every_write []:
                "stat's version changes on every write of the key (set, set_many, conditional writes, through any contract of the store), with the clock standing still, and a deleted key written again never gets an old version back.";
            versions::version_of_other_keys_is_unchanged_by_a_write []:
                "Writes of other keys leave a key's version as it was.";

            conditional::create_writes_only_over_no_live_entry [Conditional]:
                "create writes a missing or deleted key and returns true; over a live key (through any contract) it returns false and changes nothing.";
            conditional::create_writes_over_an_expired_entry [Conditional, Ttl]:
                "create over an entry whose deadline has passed writes and returns true.";
            conditional::create_sets_its_ttl [Conditional, Ttl]:
                "A key created with a TTL expires at its deadline.";
            conditional::set_if_version_writes_only_at_that_version [Conditional]:
                "set_if_version writes only while the key has the version given (from any contract of the store); an older version, a missing key, or a deleted and recreated key is false and writes nothing.";
            conditional::set_if_version_replaces_the_ttl [Conditional, Ttl]:
                "set_if_version's TTL replaces the entry's, and None clears it, as set does.";
            conditional::set_if_version_refuses_an_expired_entry [Conditional, Ttl]:
                "set_if_version with the version of an entry that has expired is false and writes nothing.";
            conditional::increment_counts_from_zero [Conditional]:
                "increment adds to a decimal counter stored as text, a missing key counting as 0 and created without a TTL; it reaches i64::MAX and i64::MIN.";
            conditional::increment_refuses_non_integers_and_overflow [Conditional]:
                "increment of a value that is not a canonical decimal i64 (`01`, `+1`, ` 1`, `1.5`, `-0`, ...), or past i64, is InvalidInput and changes nothing: a counter never wraps.";
            conditional::increment_keeps_the_ttl [Conditional, Ttl]:
                "increment keeps the counter's TTL; an expired counter counts as 0 and the new one has no TTL.";
            conditional::concurrent_creates_of_one_key_have_one_winner [Conditional]:
                "Creates of one missing key started together, through clones and other contracts of the store, round after round: exactly one returns true, and its value is kept.";
            conditional::concurrent_set_if_version_has_one_winner [Conditional]:
                "Compare-and-sets started together with one version, round after round: exactly one writes.";
            conditional::concurrent_increments_lose_no_update [Conditional]:
                "Increments started together, round after round: each returns a different sum and none is lost.";
            conditional::get_or_insert_with_loads_once_for_every_contract_of_the_store [Conditional]:
                "get_or_insert_with of one missing key, started together through clones and other contracts of the store: one loader runs, every caller gets its value.";
            conditional::get_or_insert_with_keeps_what_is_stored [Conditional]:
                "get_or_insert_with returns a stored value without loading, stores a loaded one, and hands a loader's error to its caller, storing nothing.";

            close::close_is_idempotent []:
                "close is idempotent: closing again, or through a clone, is Ok.";
            close::every_operation_after_close_is_closed []:
                "After close every operation is Closed, naming the contract and operation.";
            close::close_closes_every_clone []:
                "Closing a clone closes the original and every other clone.";
            close::close_leaves_other_contracts_open []:
                "Closing one contract leaves separately opened contracts on the store open.";
            close::data_lifetime_follows_persistence []:
                "Data outlives its last contract exactly when the driver claims persistence.";
            close::data_lives_while_any_contract_is_open []:
                "Data lives while any contract of the name is open, with others closed but not dropped; without persistence, the last close releases it.";
            close::reopening_with_another_config_is_invalid_config []:
                "Opening an open store with another config is InvalidConfig, changes nothing, and leaves nothing open.";

            sharing::same_name_shares_data []:
                "Two contracts opened with one name see each other's writes and deletes.";
            sharing::same_name_sees_writes_at_once_both_ways []:
                "Two contracts of one name see each other's writes and deletes at once, both ways, whatever each read before: no handle serves a cached answer.";
            sharing::different_names_are_isolated []:
                "Stores with different names, even names extending each other, share nothing.";
            sharing::names_differing_in_case_are_isolated []:
                "Names that differ only in case (`store`, `Store`, `ß`, `SS`) are different stores.";
            sharing::names_differing_only_after_byte_64_are_isolated []:
                "Names equal for their first 64, 128, 255, 256 or 1023 bytes are different stores.";
            sharing::same_name_shares_expiry [Ttl]:
                "A TTL set through one contract expires the entry for every contract.";

            concurrency::concurrent_writers_lose_no_write []:
                "Concurrent writers of distinct keys lose no write.";
            concurrency::contended_writers_leave_a_written_value []:
                "Contended writers of one key leave one thread's last written value.";
            concurrency::readers_never_see_torn_values []:
                "Readers racing writers see whole values only, never a mix of two.";
            concurrency::readers_never_see_expired_values [Ttl]:
                "Readers racing the clock never see a value after its deadline, nor see it return.";
            concurrency::concurrent_deletes_remove_once []:
                "Of concurrent deletes of one live key, exactly one returns true.";
            concurrency::concurrent_deletes_of_one_key_remove_it_once []:
                "Deletes started at one instant on one live key, round after round: exactly one reports removing it.";
            concurrency::concurrent_creates_of_one_key_list_it_once []:
                "Writers creating one new key at one instant, round after round: the key is listed once, with one writer's value.";
            concurrency::readers_never_miss_a_key_being_overwritten []:
                "A key that is only ever overwritten is always found by every read kind: an overwrite is one step, not delete then insert.";
            concurrency::readers_see_each_value_with_its_own_ttl [Ttl]:
                "A reader sees each value with the TTL it was written with: value and TTL are written in one step.";
            concurrency::list_and_get_agree_while_keys_come_and_go []:
                "While keys are created or deleted, a readable key is listed and a listed key is readable: index and data change in one step.";
            concurrency::concurrent_lists_stay_sorted_and_complete []:
                "A list racing writes to other keys is sorted and misses no stable key.";
            concurrency::entries_gauge_is_exact_after_concurrent_writes []:
                "After concurrent writes and deletes, the entries gauge equals the keys listed.";

            bulk::get_many_returns_values_in_key_order []:
                "get_many returns values in the order of the keys given.";
            bulk::get_many_missing_keys_are_none []:
                "get_many answers None for missing keys.";
            bulk::get_many_repeats_duplicate_keys []:
                "get_many answers a key given twice twice.";
            bulk::set_many_last_duplicate_wins []:
                "set_many with a key given twice keeps the last value.";
            bulk::delete_many_counts_each_live_key_once []:
                "delete_many counts each live key removed once, however often it is given.";
            bulk::bulk_invalid_key_changes_nothing []:
                "One invalid key fails a bulk call whole: nothing is written or removed.";
            bulk::bulk_calls_of_thousands_of_keys_are_complete []:
                "set_many, get_many and delete_many of 3,001 keys handle every key, in order, the last duplicate winning.";
            bulk::set_many_ttl_applies_to_every_entry [Ttl]:
                "set_many's TTL applies to every entry it writes.";
            bulk::set_many_ttl_replaces_earlier_ttls [Ttl]:
                "set_many's TTL replaces what existing keys had: no TTL, a longer or a shorter one.";
            bulk::set_many_without_ttl_clears_ttls [Ttl]:
                "set_many without a TTL clears the earlier TTLs of the keys it writes.";
            bulk::bulk_calls_with_no_keys_are_no_ops []:
                "Bulk calls with no keys succeed and change nothing.";
            bulk::set_many_is_atomic_for_readers [AtomicBulk]:
                "With atomic_bulk, no reader sees part of a set_many.";
            bulk::delete_many_is_atomic_for_readers [AtomicBulk]:
                "With atomic_bulk, no reader sees part of a delete_many.";

            metrics::metrics_count_single_operations_exactly []:
                "Counters are exact after a known sequence; gets = hits + misses.";
            metrics::metrics_count_bulk_operations_per_key []:
                "Bulk calls count once per key given.";
            metrics::metrics_count_expired_reads_as_misses [Ttl]:
                "A read of an expired key counts as a miss, not a hit.";
            metrics::metrics_are_per_contract_handle []:
                "Counters belong to one contract and its clones, not to the store.";
            metrics::gauges_match_the_stored_entries []:
                "Reported gauges match what is stored: entries, bytes and no evictions.";

            limits::limits_hold_after_every_set [Limits]:
                "With limits, bytes and entries stay within them after every set.";
            limits::limits_hold_when_overwrites_grow_values [Limits]:
                "With limits, overwrites that grow values (set and set_many) keep bytes within max_bytes after every call.";
            limits::limits_evict_expired_entries_first [Limits, Ttl, ManualClock]:
                "With limits, expired entries are reclaimed before any live one is evicted.";
            limits::limits_reclaiming_expired_entries_counts_expirations [Limits, Ttl, ManualClock]:
                "With limits, each expired entry reclaimed to make room moves the expirations gauge once, and evictions not at all.";
            limits::limits_entries_gauge_counts_live_keys_after_a_sweep [Limits, Ttl, ManualClock]:
                "With limits, after TTL churn and a sweep, the entries gauge equals the live keys and an emptied store's bytes return to the start.";
            limits::limits_reject_a_value_larger_than_max_bytes [Limits]:
                "A value larger than max_bytes is CapacityExceeded and evicts nothing.";
            limits::limits_set_many_beyond_capacity_is_refused_or_complete [Limits]:
                "A set_many with more entries than fit is CapacityExceeded with nothing written, or leaves every entry readable; never a part.";
            limits::limits_set_many_over_max_bytes_writes_nothing [Limits]:
                "A set_many whose values together pass max_bytes is CapacityExceeded, writing and evicting nothing.";
            limits::limits_overwrites_in_a_full_store_evict_nothing [Limits]:
                "Overwriting the keys of a full store (set or set_many, same or smaller values) evicts nothing and counts no eviction.";

            model::model_matches_reference []:
                "Random operation sequences give the results of a reference model, step by step.";

            watch::watch_reports_puts_and_deletes [Watch]:
                "Every set, set_many, delete and delete_many that changes a key is one event of its kind; a delete that removes nothing is none.";
            watch::watch_reports_conditional_writes [Watch, Conditional]:
                "A create, set_if_version or increment that writes is one Put event; one refused, or failing, is none.";
            watch::watch_events_of_a_key_arrive_in_write_order [Watch]:
                "Concurrent writers: each key's events arrive in the order its writes took effect, with increasing seqs, none repeated.";
            watch::watch_prefix_is_plain_bytes [Watch]:
                "A watch's prefix is bytes, not a path: `app` sees app, apple and app.json; glob characters are data; watch_key sees one key.";
            watch::watch_overflow_reports_lagged_and_never_blocks_writers [Watch]:
                "A watch nobody reads never slows writers; its full buffer becomes one Lagged that accounts for what was dropped, and events go on.";
            watch::watch_resumes_after_a_seq [Watch]:
                "watch_from(seq) replays exactly the events after seq, with their seqs, then goes on.";
            watch::watch_from_before_the_history_is_compacted [Watch]:
                "watch_from a seq older than the kept history is Compacted, saying to resync.";
            watch::watch_snapshot_has_no_gap_and_no_duplicate [Watch]:
                "watch_snapshot's keys and the events after its seq, taken while a writer runs, add up to the store: no gap, no duplicate.";
            watch::watch_sees_changes_made_through_other_contracts [Watch]:
                "A watch sees the writes of every contract on its store, and none of another store.";
            watch::watch_reports_expiry [Watch, Ttl]:
                "An expired entry the store reclaims is one Expired event; a delete that finds it expired reports Expired, not Delete.";
            watch::watch_reports_evictions [Watch, Limits]:
                "A store with limits reports each live entry it evicts with one Evicted event.";
            watch::watch_dropped_is_unsubscribed [Watch]:
                "A dropped watch is unsubscribed: the watches gauge counts only the live ones.";
            watch::watch_ends_when_its_contract_closes [Watch]:
                "Closing a contract (or a clone) ends its watches with Closed after what they buffered; watch on a closed contract is Closed.";
            watch::watch_unsupported_is_an_error [NoWatch]:
                "A driver without watch refuses every watch call with Unsupported.";
        }
    };
}
