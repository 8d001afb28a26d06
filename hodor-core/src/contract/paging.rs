//! Paged listing: `list_page` and the `pages` iterator.

use super::Contract;
use crate::driver::DriverError;
use crate::error::{Error, Result};
use crate::key;
use crate::metrics::Counter;
use crate::page::{Page, Pages};

impl Contract {
    /// One page of the keys [`Contract::list`] would return: at most `limit` live keys
    /// starting with `prefix`, sorted by bytes, each strictly after `start_after` when it
    /// is given. [`Page::next`] is the cursor of the next page (this page's last key), or
    /// `None` when no key follows.
    ///
    /// Pages cost what they return, not what the prefix holds: the memory driver seeks in
    /// its ordered index, Redis reads its index with `ZRANGE ... BYLEX ... LIMIT`. Read one
    /// after another, they return every key that stays live meanwhile exactly once and in
    /// order, whatever is written between them; a key created or removed meanwhile may or
    /// may not be seen. A `limit` of 0 is [`Error::InvalidInput`]. A driver without native
    /// paging pages through a full listing.
    ///
    /// ```
    /// # fn walk(c: &hodor_core::Contract) -> hodor_core::Result<()> {
    /// let mut cursor: Option<String> = None;
    /// loop {
    ///     let page = c.list_page("user/", cursor.as_deref(), 500)?;
    ///     for key in &page.keys { /* ... */ }
    ///     match page.next {
    ///         Some(next) => cursor = Some(next), // e.g. handed to the next HTTP request
    ///         None => break,
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub fn list_page(&self, prefix: &str, start_after: Option<&str>, limit: usize) -> Result<Page> {
        self.check_open("list_page")?;
        if limit == 0 {
            return Err(Error::InvalidInput {
                driver: self.inner.driver_name,
                contract: self.inner.name.clone(),
                key: None,
                reason: "a page of 0 keys would never reach the next key; pass a limit of 1 \
                         or more"
                    .to_owned(),
            });
        }
        let page = if prefix.len() > key::MAX_KEY_LEN || prefix.contains('\0') {
            // No valid key can start with such a prefix.
            Page::default()
        } else {
            self.inner
                .driver
                .list_page(prefix, start_after, limit)
                .map_err(|e| self.error("list_page", None, e))?
        };
        // A page that does not move past its cursor would make `pages` loop forever.
        let stuck = match (&page.next, start_after) {
            (Some(next), Some(after)) => next.as_str() <= after,
            _ => false,
        };
        if stuck || page.keys.len() > limit {
            return Err(self.error(
                "list_page",
                None,
                DriverError::backend(format!(
                    "the driver returned a page of {} keys for a limit of {limit}, or one that \
                     does not move past its cursor",
                    page.keys.len()
                )),
            ));
        }
        self.count(Counter::Lists, 1);
        Ok(page)
    }

    /// Every page of the live keys starting with `prefix`, `page_size` keys at a time:
    /// [`Contract::list_page`] called with each page's cursor, as an iterator.
    ///
    /// ```
    /// # fn count(c: &hodor_core::Contract) -> hodor_core::Result<usize> {
    /// let mut total = 0;
    /// for page in c.pages("logs/2024-", 1000) {
    ///     total += page?.keys.len();
    /// }
    /// # Ok(total) }
    /// ```
    pub fn pages(&self, prefix: &str, page_size: usize) -> Pages {
        Pages::new(self.clone(), prefix, page_size)
    }
}
