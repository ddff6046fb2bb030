
mod docs;
