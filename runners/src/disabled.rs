//! Names of the runners whose backend feature is off: selecting one says which
//! feature to enable, instead of "no such runner".

/// Registers every runner of a backend as unavailable, with the same reason.
#[allow(unused_macros)] // every backend may be on
macro_rules! disabled {
    ($feature:literal => $($name:literal $strategy:ident),+ $(,)?) => {
        $(
            inventory::submit! {
                autoawait_core::RunnerFactory::unavailable(
                    autoawait_core::RunnerInfo::new(
                        $name, $feature, autoawait_core::Strategy::$strategy, "",
                    ),
                    concat!(
                        "runner `", $name, "` is not enabled in this build: enable the `",
                        $feature, "` feature of autoawait-runners"
                    ),
                )
            }
        )+
    };
}

#[cfg(not(feature = "tokio"))]
disabled!("tokio" => "tokio" Threaded, "tokio-per-cell" PerCell, "tokio-fresh" Fresh,
          "tokio-host" Host, "tokio-nested" Nested);
#[cfg(not(feature = "smol"))]
disabled!("smol" => "smol" Threaded, "smol-per-cell" PerCell, "smol-fresh" Fresh,
          "smol-host" Host, "smol-nested" Nested);
#[cfg(not(feature = "async-std"))]
disabled!("async-std" => "async-std" Threaded);
#[cfg(not(all(feature = "glommio", target_os = "linux")))]
disabled!("glommio" => "glommio" Threaded);
