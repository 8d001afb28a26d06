//! Keys as paths: list by prefix, sorted by bytes; a prefix is plain bytes, not a folder.
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

    // A "folder" delete is a list plus delete_many.
    let guide = files.list("docs/guide/")?;
    let keys: Vec<&str> = guide.iter().map(String::as_str).collect();
    println!("deleted {} guide pages", files.delete_many(&keys)?);
    println!("list(\"docs/\")       -> {:?}", files.list("docs/")?);
    files.close()
}
