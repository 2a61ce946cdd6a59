fn main() { nice_plug_xtask::main().unwrap() }
