//! Rebuilds the crate when a migration is added, removed or edited:
//! `refinery::embed_migrations!` reads the folder at compile time but only
//! tracks the files that already existed.

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
