//! Keys as paths: list by prefix, sorted by bytes; a prefix is plain bytes, not a folder;
//! a long listing read a page at a time.
//!
//! Run with `cargo run --example prefix_listing`.

use hodor_core::{Contract, Error};
use hodor_memory as _;

fn main() -> Result<(), Error> {
    let files = Contract::new("memory", "files", None)?;
    for path in [
        "docs/readme.md",
        "docs/guide/intro.md",
        "docs/guide/advanced.md",
        "docs.bak/readme.md",
        "images/logo.png",
        "Images/legacy.png",
    ] {
        files.set(path, format!("contents of {path}"), None)?;
    }

    println!("everything (sorted by bytes, uppercase first):");
    for key in files.list("")? {
        println!("  {key}");
    }
    println!("list(\"docs/guide/\") -> {:?}", files.list("docs/guide/")?);
    // "docs" is a byte prefix: it matches "docs.bak/..." too. Add the "/" to mean the folder.
    println!("list(\"docs\")        -> {:?}", files.list("docs")?);
    println!("list(\"docs/\")       -> {:?}", files.list("docs/")?);
    println!("list(\"videos/\")     -> {:?}", files.list("videos/")?);

    // A prefix that may hold many keys is read a page at a time: each page costs what it
    // returns, and its cursor (the last key) starts the next, e.g. in the next request.
    let first = files.list_page("", None, 2)?;
    println!(
        "first page of 2: {:?}, next after {:?}",
        first.keys, first.next
    );
    let second = files.list_page("", first.next.as_deref(), 2)?;
    println!("second page:     {:?}", second.keys);
    for (n, page) in files.pages("docs", 2).enumerate() {
        println!("pages(\"docs\", 2) #{n}: {:?}", page?.keys);
    }

    // A "folder" delete is a list plus delete_many, a page at a time.
    let mut deleted = 0;
    for page in files.pages("docs/guide/", 100) {
        let page = page?;
        let keys: Vec<&str> = page.keys.iter().map(String::as_str).collect();
        deleted += files.delete_many(&keys)?;
    }
    println!("deleted {deleted} guide pages");
    println!("list(\"docs/\")       -> {:?}", files.list("docs/")?);
    files.close()
}
