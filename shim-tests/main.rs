
mod docs;
mod dockerfile;
