//! `autoawait`: the REPL (no arguments), `autoawait run FILE.lua` and
//! `autoawait kernel` (a Jupyter kernel).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::anyhow;
use autoawait_kernel::{ConnectionInfo, InstallTarget, Kernel, KernelSpec};
use clap::{Arg, ArgAction, ArgGroup, ArgMatches, Command};

use autoawait_runners as _;

fn cli() -> Command {
    let runner = Arg::new("runner")
        .long("runner")
        .value_name("NAME")
        .help("the runner cells use (see %autoawait --list); default: tokio if built");
    Command::new("autoawait")
        .version(env!("CARGO_PKG_VERSION"))
        .about("Lua cells that await, run through the runner picked with %autoawait")
        .arg(runner.clone())
        .subcommand(
            Command::new("run")
                .about("run the cells of a percent-format file (`-- %%` starts a cell)")
                .arg(Arg::new("file").value_name("FILE.lua").required(true))
                .arg(runner.clone())
                .arg(
                    Arg::new("keep-going")
                        .long("keep-going")
                        .action(ArgAction::SetTrue)
                        .help("run every cell even after one fails"),
                ),
        )
        .subcommand(
            Command::new("check")
                .about(
                    "run the conformance suite against a plugin's runners (PLUGIN.so or a \
                     plugin name) or a built-in runner (NAME, or `all`); a check running \
                     past 60 s fails as a deadlock (AUTOAWAIT_CHECK_TIMEOUT=SECS changes that)",
                )
                .arg(Arg::new("target").value_name("PLUGIN|NAME").required(true))
                .arg(
                    Arg::new("runner")
                        .long("runner")
                        .value_name("R")
                        .help("check only this runner of the plugin"),
                )
                .arg(
                    Arg::new("isolated")
                        .long("isolated")
                        .value_name("CHECK")
                        .hide(true),
                ),
        )
        .subcommand(
            Command::new("bench")
                .about(
                    "measure per-cell latency of runners beside the floors (spin and park \
                     ping-pong, a direct block_on), and print a table",
                )
                .arg(
                    Arg::new("runner")
                        .long("runner")
                        .value_name("A,B,...")
                        .value_delimiter(',')
                        .action(ArgAction::Append)
                        .help("the runners to measure (default: every available one)"),
                )
                .arg(
                    Arg::new("plugin")
                        .long("plugin")
                        .value_name("PATH")
                        .action(ArgAction::Append)
                        .help("load this plugin first; its runners are measured too"),
                )
                .arg(
                    Arg::new("quick")
                        .long("quick")
                        .action(ArgAction::SetTrue)
                        .help("a shorter, noisier run"),
                )
                .arg(
                    Arg::new("json")
                        .long("json")
                        .value_name("FILE")
                        .help("also write the measurements to FILE as JSON"),
                ),
        )
        .subcommand(
            Command::new("new")
                .about("create a crate from a template (like `cargo new`)")
                .subcommand_required(true)
                .subcommand(
                    Command::new("plugin")
                        .about(
                            "a runner crate that passes `autoawait check` as generated: a \
                             C-ABI plugin, or with --static a crate linked into its host",
                        )
                        .arg(Arg::new("dir").value_name("DIR").required(true))
                        .arg(Arg::new("name").long("name").value_name("NAME").help(
                            "the runner's name, as typed after %autoawait (default: DIR's name)",
                        ))
                        .arg(
                            Arg::new("static")
                                .long("static")
                                .action(ArgAction::SetTrue)
                                .help("a crate linked into its host instead of a loaded plugin"),
                        ),
                ),
        )
        .subcommand(
            Command::new("kernel")
                .about("run as a Jupyter kernel (Jupyter starts it with -f CONNECTION_FILE)")
                .arg(
                    Arg::new("connection-file")
                        .short('f')
                        .value_name("CONNECTION_FILE")
                        .help("the connection file Jupyter wrote"),
                )
                .arg(runner)
                .arg(
                    Arg::new("extra")
                        .value_name("ARGS")
                        .num_args(0..)
                        .trailing_var_arg(true)
                        .allow_hyphen_values(true)
                        .hide(true)
                        .help(
                            "arguments a front end adds (`jupyter run` passes its files); ignored",
                        ),
                )
                .args_conflicts_with_subcommands(true)
                .subcommand(
                    Command::new("install")
                        .about("install the kernelspec (kernel.json and logos) for Jupyter")
                        .arg(
                            Arg::new("user")
                                .long("user")
                                .action(ArgAction::SetTrue)
                                .help("into the user's Jupyter data dir (default)"),
                        )
                        .arg(
                            Arg::new("sys-prefix")
                                .long("sys-prefix")
                                .action(ArgAction::SetTrue)
                                .help("into the active virtualenv or conda env"),
                        )
                        .arg(
                            Arg::new("prefix")
                                .long("prefix")
                                .value_name("P")
                                .help("into P/share/jupyter/kernels"),
                        )
                        .group(ArgGroup::new("where").args(["user", "sys-prefix", "prefix"])),
                ),
        )
}

/// `autoawait kernel -f FILE` and `autoawait kernel install`.
fn kernel_command(matches: &ArgMatches, sub: &ArgMatches) -> anyhow::Result<bool> {
    if let Some(("install", inst)) = sub.subcommand() {
        let target = if inst.get_flag("sys-prefix") {
            InstallTarget::SysPrefix
        } else if let Some(p) = inst.get_one::<String>("prefix") {
            InstallTarget::Prefix(p.into())
        } else {
            InstallTarget::User
        };
        let info = autoawait_shell::kernel::kernel_info();
        let dir = KernelSpec::for_current_exe(&info)?.install(&target)?;
        println!("installed the autoawait kernelspec in {}", dir.display());
        return Ok(true);
    }
    let file = sub.get_one::<String>("connection-file").ok_or_else(|| {
        anyhow!(
            "`autoawait kernel` needs -f CONNECTION_FILE (Jupyter passes it; run \
             `autoawait kernel install` first)"
        )
    })?;
    let runner = sub
        .get_one::<String>("runner")
        .or(matches.get_one::<String>("runner"));
    if let Some(extra) = sub.get_many::<String>("extra") {
        let extra: Vec<&str> = extra.map(String::as_str).collect();
        eprintln!(
            "autoawait kernel: ignoring the extra arguments {extra:?} (a front end such as \
             `jupyter run` sends the code itself)"
        );
    }
    let kernel = Kernel::start(ConnectionInfo::from_file(file.as_ref())?)?;
    // The kernel owns SIGINT: it interrupts the running cell.
    kernel.interrupt_on_sigint();
    // It dies with the process that started it (Jupyter's JPY_PARENT_PID).
    kernel.exit_with_parent();
    // What C code, `io.write` and child processes print reaches the cell.
    kernel.capture_output()?;
    let session = autoawait_shell::kernel::LuaSession::new(&kernel, runner.map(String::as_str))
        .map_err(|e| anyhow!("{e}"))?;
    kernel.serve(session)?;
    Ok(true)
}

fn run() -> anyhow::Result<bool> {
    let matches = cli().get_matches();
    match matches.subcommand() {
        Some(("kernel", sub)) => kernel_command(&matches, sub),
        Some(("check", sub)) => autoawait_shell::check::check(
            sub.get_one::<String>("target").expect("required"),
            sub.get_one::<String>("runner").map(String::as_str),
            sub.get_one::<String>("isolated").map(String::as_str),
        ),
        Some(("bench", sub)) => {
            let many = |id: &str| -> Vec<String> {
                sub.get_many::<String>(id)
                    .map(|v| v.cloned().collect())
                    .unwrap_or_default()
            };
            autoawait_shell::bench::bench(&autoawait_shell::bench::BenchArgs {
                runners: many("runner"),
                plugins: many("plugin").into_iter().map(PathBuf::from).collect(),
                quick: sub.get_flag("quick"),
                json: sub.get_one::<String>("json").map(PathBuf::from),
            })
        }
        Some(("new", sub)) => {
            let Some(("plugin", sub)) = sub.subcommand() else {
                unreachable!("clap requires a subcommand")
            };
            let dir: PathBuf = sub.get_one::<String>("dir").expect("required").into();
            let name = match sub.get_one::<String>("name") {
                Some(name) => name.clone(),
                None => dir
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .ok_or_else(|| anyhow!("{} has no name: pass --name NAME", dir.display()))?,
            };
            let done = autoawait_shell::scaffold::new_plugin(&dir, &name, sub.get_flag("static"))?;
            println!("{done}");
            Ok(true)
        }
        Some(("run", sub)) => {
            let file: PathBuf = sub.get_one::<String>("file").expect("required").into();
            let runner = sub
                .get_one::<String>("runner")
                .or(matches.get_one::<String>("runner"));
            autoawait_shell::term::run_file(
                &file,
                runner.map(String::as_str),
                sub.get_flag("keep-going"),
            )
        }
        _ => {
            autoawait_shell::term::repl(matches.get_one::<String>("runner").map(String::as_str))?;
            Ok(true)
        }
    }
}

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(err) => {
            eprintln!("autoawait: {err:#}");
            ExitCode::FAILURE
        }
    }
}
