//! Paged listing: [`Page`], and [`Pages`], the iterator over a whole prefix.

use crate::contract::Contract;
use crate::error::Result;

/// One page of keys from [`Contract::list_page`]: at most `limit` live keys in byte
/// order, and the cursor to pass for the next page.
///
/// ```
/// use hodor_core::Page;
/// let last = Page::new(vec!["a".into(), "b".into()], None);
/// assert!(last.is_last());
/// assert_eq!(last.keys, ["a", "b"]);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Page {
    /// The keys, sorted by bytes, each after the `start_after` the page was asked for.
    pub keys: Vec<String>,
    /// Where the next page starts: pass it as `start_after`. It is the last key of this
    /// page. `None` when no key follows, so this page is the last.
    pub next: Option<String>,
}

impl Page {
    /// A page of `keys` (sorted by bytes), with `next` the cursor of the next page, `None`
    /// if no key follows. For drivers; callers get pages from the contract.
    pub fn new(keys: Vec<String>, next: Option<String>) -> Page {
        Page { keys, next }
    }

    /// `true` when no key follows this page.
    pub fn is_last(&self) -> bool {
        self.next.is_none()
    }
}

/// The pages of every live key under a prefix, from [`Contract::pages`]: each a call to
/// [`Contract::list_page`] starting after the last key of the page before.
///
/// Each item is a `Result<Page>`; after an error the iterator ends. It holds a clone of
/// the contract, so it can be moved to another thread.
#[derive(Debug)]
pub struct Pages {
    contract: Contract,
    prefix: String,
    limit: usize,
    /// The cursor of the next page; `None` once the last page was returned (or an error).
    cursor: Option<Option<String>>,
}

impl Pages {
    pub(crate) fn new(contract: Contract, prefix: &str, limit: usize) -> Pages {
        Pages {
            contract,
            prefix: prefix.to_owned(),
            limit,
            cursor: Some(None),
        }
    }
}

impl Iterator for Pages {
    type Item = Result<Page>;

    fn next(&mut self) -> Option<Result<Page>> {
        let start_after = self.cursor.take()?;
        let page = self
            .contract
            .list_page(&self.prefix, start_after.as_deref(), self.limit);
        if let Ok(page) = &page {
            // A driver that cannot tell whether more keys follow a full page ends with an
            // empty one; it says nothing, so it is not yielded. (A prefix without keys
            // still yields its one empty page.)
            if page.keys.is_empty() && page.is_last() && start_after.is_some() {
                return None;
            }
            self.cursor = page.next.clone().map(Some);
        }
        Some(page)
    }
}

impl std::iter::FusedIterator for Pages {}
