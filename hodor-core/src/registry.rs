//! The link-time driver registry.
//!
//! A driver crate registers itself with [`register_driver!`](crate::register_driver), which
//! wraps `inventory::submit!`: the registration is a static that the linker gathers, so no
//! code has to run at start-up. Rust links a crate only if code names it, so the program
//! that wants a driver writes `use hodor_memory as _;`, hodor's version of Go's blank import
//! `import _ "..."`.

use crate::driver::OpenFn;
use crate::error::Error;

/// One driver registration, made with [`register_driver!`](crate::register_driver).
#[derive(Debug)]
pub struct Registration {
    name: &'static str,
    open: OpenFn,
    origin: &'static str,
}

impl Registration {
    /// A registration of `open` under `name`; `origin` says where it was made, for the
    /// duplicate-registration error. Use [`register_driver!`](crate::register_driver)
    /// rather than calling this.
    pub const fn new(name: &'static str, open: OpenFn, origin: &'static str) -> Registration {
        Registration { name, open, origin }
    }

    /// The driver's name, as passed to [`Contract::new`](crate::Contract::new).
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The function that opens the driver.
    pub fn open_fn(&self) -> OpenFn {
        self.open
    }

    /// Where the registration was made (module path, file and line).
    pub fn origin(&self) -> &'static str {
        self.origin
    }
}

inventory::collect!(Registration);

/// Registers a driver under a name, so `Contract::new(name, ...)` can open it.
///
/// Put it once in the driver crate, at module level. The second argument is an
/// [`OpenFn`](crate::driver::OpenFn).
///
/// ```
/// use hodor_core::driver::{Driver, DriverResult};
/// # use hodor_core::{Bytes, Capabilities, Metadata};
/// # #[derive(Debug)] struct Nothing;
/// # impl Driver for Nothing {
/// #     fn capabilities(&self) -> Capabilities { Capabilities::NONE }
/// #     fn set(&self, _: &str, _: Bytes, _: Option<std::time::Duration>) -> DriverResult<()> { Ok(()) }
/// #     fn get(&self, _: &str) -> DriverResult<Option<Bytes>> { Ok(None) }
/// #     fn delete(&self, _: &str) -> DriverResult<bool> { Ok(false) }
/// #     fn list(&self, _: &str) -> DriverResult<Vec<String>> { Ok(vec![]) }
/// #     fn stat(&self, _: &str) -> DriverResult<Option<Metadata>> { Ok(None) }
/// # }
///
/// fn open(_name: &str, _config: Option<serde_json::Value>) -> DriverResult<Box<dyn Driver>> {
///     Ok(Box::new(Nothing))
/// }
///
/// hodor_core::register_driver!("nothing", open);
/// ```
#[macro_export]
macro_rules! register_driver {
    ($name:expr, $open:expr $(,)?) => {
        $crate::inventory::submit! {
            $crate::Registration::new(
                $name,
                $open,
                concat!(module_path!(), " (", file!(), ":", line!(), ")"),
            )
        }
    };
}

/// The names of every registered driver, sorted, each once.
///
/// ```
/// // With no driver crate linked, nothing is registered.
/// assert!(hodor_core::drivers().iter().all(|name| !name.is_empty()));
/// ```
pub fn drivers() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = inventory::iter::<Registration>
        .into_iter()
        .map(Registration::name)
        .collect();
    names.sort_unstable();
    names.dedup();
    names
}

/// The one registration for `name`. Duplicates are found here, at lookup, and reported
/// with both origins rather than resolved by link order.
pub(crate) fn lookup(name: &str) -> Result<&'static Registration, Error> {
    let mut found = inventory::iter::<Registration>
        .into_iter()
        .filter(|r| r.name == name);
    let Some(first) = found.next() else {
        return Err(Error::UnknownDriver {
            driver: name.to_owned(),
            registered: drivers(),
        });
    };
    if let Some(second) = found.next() {
        // inventory's iteration order is unspecified; sort so the message is stable.
        let (a, b) = if first.origin <= second.origin {
            (first, second)
        } else {
            (second, first)
        };
        return Err(Error::DuplicateDriver {
            driver: name.to_owned(),
            first: a.origin.to_owned(),
            second: b.origin.to_owned(),
        });
    }
    Ok(first)
}
