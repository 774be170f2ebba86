//! One module per subcommand: glue between the CLI and the library, nothing more.
pub mod ablate;
pub mod bench;
pub mod predict;
pub mod synth;
pub mod test;
pub mod train;

/// The only allowed placeholder (until the command's issue lands): exit 2 with a message.
pub fn not_implemented(name: &str, _args: &dyn std::fmt::Debug) -> anyhow::Result<()> {
    Err(crate::usage!("`npr {name}` is not implemented yet"))
}
