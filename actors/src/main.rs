//! The `threds` command-line tool.

fn main() {
    println!("threds");
}
