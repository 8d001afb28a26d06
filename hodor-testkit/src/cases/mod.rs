//! The conformance cases: one public function per rule, and [`ALL`], the table of them.
//!
//! Each function takes a [`Harness`](crate::Harness), panics with the reason if the driver
//! breaks its rule, and returns if the driver keeps it or the rule does not apply (after
//! printing why it was skipped). [`conformance_tests!`](crate::conformance_tests) turns
//! each into a `#[test]` of the same name; [`run_cases`](crate::run_cases) runs them from
//! code. The list of cases lives in one place, so the table, the functions and the
//! generated tests cannot drift apart.

mod bulk;
mod close;
mod concurrency;
mod conditional;
mod keys;
mod limits;
mod list;
mod metrics;
mod missing;
mod model;
mod paging;
mod round_trip;
mod sharing;
mod stat;
mod ttl;
mod versions;
mod watch;

crate::__with_cases!(__case_functions!());

#[cfg(test)]
mod tests {
    use super::ALL;

    #[test]
    fn names_are_unique_and_rules_are_stated() {
        let mut names: Vec<&str> = ALL.iter().map(|c| c.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ALL.len());
        assert!(ALL.len() >= 100, "{} cases", ALL.len());
        for case in ALL {
            assert!(case.rule.len() > 20, "{} states its rule", case.name);
        }
    }

    /// Every case function in the modules is in the table: a case written but not listed
    /// would silently never run.
    #[test]
    fn every_case_function_is_listed() {
        let sources = [
            include_str!("bulk.rs"),
            include_str!("close.rs"),
            include_str!("concurrency.rs"),
            include_str!("conditional.rs"),
            include_str!("keys.rs"),
            include_str!("limits.rs"),
            include_str!("list.rs"),
            include_str!("metrics.rs"),
            include_str!("missing.rs"),
            include_str!("model.rs"),
            include_str!("paging.rs"),
            include_str!("round_trip.rs"),
            include_str!("sharing.rs"),
            include_str!("stat.rs"),
            include_str!("ttl.rs"),
            include_str!("versions.rs"),
            include_str!("watch.rs"),
        ];
        let defined: Vec<&str> = sources
            .iter()
            .flat_map(|s| s.lines())
            .filter_map(|l| l.strip_prefix("pub(crate) fn "))
            .filter_map(|l| l.split('(').next())
            .collect();
        for name in &defined {
            assert!(
                ALL.iter().any(|c| c.name == *name),
                "case {name} is defined but not in the list"
            );
        }
        assert_eq!(defined.len(), ALL.len());
    }
}
