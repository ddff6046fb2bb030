//! Parsing rules, configuration, and every command of both grammars.

use super::*;

// ---- parsing rules ----

#[test]
fn repeated_options() {
    let plan = remote("prove_ultra_honk_output_all -b /a -b /b -w /w -o /t");
    assert_eq!(plan.inputs[0].path, "/a");
    assert_eq!(native("prove -b /a -b /b -o /t"), NativeCode::BbParseError);
    // Repeated flags are fine in both.
    remote("prove -v -v -o /t -d -d");
}

#[test]
fn options_in_any_order_give_the_same_plan() {
    let a = remote("prove_ultra_honk_output_all -o /t -b /b -w /w -v");
    let b = remote("prove_ultra_honk_output_all -v -w /w -o /t -b /b");
    assert_eq!((inputs(&a), &a.output_dir), (inputs(&b), &b.output_dir));
    let c = remote("prove -w /w -v -b /b -o /t");
    let d = remote("-v prove -o /t -b /b -w /w");
    assert_eq!((inputs(&c), &c.output_dir), (inputs(&d), &d.output_dir));
}

#[test]
fn missing_values() {
    // Legacy: a value option as last token takes the default (resolved against cwd).
    let plan = remote("prove_ultra_honk_output_all -o /t -w /w -b");
    assert_eq!(
        inputs(&plan)[0],
        ("bytecode", "/srv/prover/target/program.json", Dflt, true)
    );
    assert_eq!(plan.dropped, ["-b"]);
    assert_eq!(
        local_argv(&plan),
        "prove_ultra_honk_output_all -o /t -w /w -b /srv/prover/target/program.json"
    );
    // Modern: CLI11 error 114.
    assert_eq!(native("prove -o /t -b"), NativeCode::BbParseError);
}

#[test]
fn default_paths_are_resolved_against_cwd_and_written_out() {
    let plan = remote("prove");
    assert_eq!(
        inputs(&plan),
        [
            ("bytecode", "/srv/prover/target/program.json", Dflt, true),
            ("witness", "/srv/prover/target/witness.gz", Dflt, true),
            ("vk", "/srv/prover/target/vk", Dflt, true),
        ]
    );
    assert_eq!(
        (plan.output_dir.path.as_str(), plan.output_dir.source),
        ("/srv/prover/out", Dflt)
    );
    assert_eq!(
        local_argv(&plan),
        "prove --bytecode_path /srv/prover/target/program.json --witness_path /srv/prover/target/witness.gz \
         --vk_path /srv/prover/target/vk --output_path /srv/prover/out"
    );
    let plan = remote("prove_ultra_honk_output_all -b rel/b -w ./w.gz");
    assert_eq!(plan.inputs[0].path, "/srv/prover/rel/b");
    assert_eq!(plan.inputs[1].path, "/srv/prover/w.gz");
    assert_eq!(plan.inputs[1].given, "./w.gz");
    assert_eq!(plan.output_dir.path, "/srv/prover/proofs");
}

#[test]
fn equals_and_joined_forms() {
    let plan = remote("prove --bytecode_path=/b -w/w --output_path=/t -vd --oracle_hash=keccak");
    assert_eq!(
        inputs(&plan)[..2],
        [
            ("bytecode", "/b", Flag, true),
            ("witness", "/w", Flag, true)
        ]
    );
    assert_eq!(plan.output_dir.path, "/t");
    let rendered = local_argv(&plan);
    assert!(
        rendered.starts_with(
            "prove --bytecode_path /b -w /w --output_path /t -v -d --oracle_hash=keccak"
        ),
        "{rendered}"
    );
}

#[test]
fn legacy_flag_before_the_command_is_an_unknown_command() {
    assert_eq!(
        native("-v prove_ultra_honk_output_all -o /t"),
        NativeCode::UnknownCommand
    );
    assert_eq!(native("-v --version"), NativeCode::Informational); // modern reads it as help-like version
    assert_eq!(
        native_env("-v --version", &[("BB_REMOTE_GRAMMAR", "legacy")]),
        NativeCode::UnknownCommand
    );
}

#[test]
fn crs_directory_is_dropped() {
    let plan = remote("prove_ultra_honk_output_all -c /home/u/.bb-crs -o /t -b /b -w /w");
    assert_eq!(plan.dropped, ["-c", "/home/u/.bb-crs"]);
    assert_eq!(
        local_argv(&plan),
        "prove_ultra_honk_output_all -o /t -b /b -w /w"
    );
    let plan = remote("-c /crs prove -o /t --crs_path=/crs2 -v");
    assert_eq!(plan.dropped, ["-c", "/crs", "--crs_path=/crs2"]);
    assert!(!local_argv(&plan).contains("crs"));
    assert!(plan.argv.contains(&ArgTemplate::Literal("-v".into())));
}

#[test]
fn what_is_not_understood_goes_native() {
    for (line, code) in [
        ("prove -o - -b /b", NativeCode::StdoutOutput),
        (
            "prove_ultra_honk_output_all -o - -b /b",
            NativeCode::StdoutOutput,
        ),
        (
            "prove_ultra_honk_output_all -o /t --frobnicate",
            NativeCode::UnknownArgument,
        ),
        (
            "prove_ultra_honk_output_all -o -b /b",
            NativeCode::AmbiguousArgv,
        ),
        (
            "avm_prove --avm-hints /h -o /t --avm-dump-trace /t/trace.csv",
            NativeCode::ExtraOutput,
        ),
        (
            "prove -o /t --bench_out /t/bench.json",
            NativeCode::ExtraOutput,
        ),
        // An empty argument marks `prove` as legacy (UltraPlonk, not delegated) unless
        // the argv is modern for another reason; then CLI11 rejects it (109).
        ("prove -o /t ''", NativeCode::NotDelegated),
        ("-v prove -o /t ''", NativeCode::BbParseError),
        ("prove -o /t --nope", NativeCode::BbParseError),
        ("prove -o /t --write_vk=true", NativeCode::UnsupportedSyntax),
        ("prove -b '' -o /t", NativeCode::EmptyPath),
        ("prove --help", NativeCode::Informational),
        ("--version", NativeCode::Informational),
        ("", NativeCode::NoCommand),
        ("frobnicate", NativeCode::UnknownCommand),
        (
            "contract --scheme ultra_honk -k /vk -o /c.sol -v",
            NativeCode::NotDelegated,
        ),
        ("msgpack run -i /tmp/bb.sock", NativeCode::NotDelegated),
    ] {
        assert_eq!(native(line), code, "{line}");
    }
}

#[test]
fn non_utf8_argv_goes_native() {
    use std::os::unix::ffi::OsStringExt;
    let args = vec![
        OsString::from("prove"),
        OsString::from("-b"),
        OsString::from_vec(vec![b'/', 0xff]),
    ];
    let inv = parse(&args, &Env::default(), GrammarHint::Auto);
    let Route::Native(reason) = route(&inv, &DelegateSet::Default, Path::new(CWD)) else {
        panic!()
    };
    assert_eq!(reason.code, NativeCode::NotUtf8);
}

#[test]
fn relative_working_directory_goes_native() {
    let inv = parse(&argv("prove -o /t"), &Env::default(), GrammarHint::Auto);
    let Route::Native(reason) = route(&inv, &DelegateSet::Default, Path::new("rel")) else {
        panic!()
    };
    assert_eq!(reason.code, NativeCode::BadWorkingDirectory);
}

// ---- configuration ----

#[test]
fn bb_remote_delegate_overrides_the_set() {
    let env = [("BB_REMOTE_DELEGATE", "prove,write_vk")];
    let plan = remote_env("write_vk -b /b -o /t", &env);
    assert_eq!(inputs(&plan), [("bytecode", "/b", Flag, true)]);
    assert_eq!(
        native_env("avm_prove --avm-inputs /i -o /t", &env),
        NativeCode::NotDelegated
    );
    assert_eq!(
        native_env("prove -o /t", &[("BB_REMOTE_DELEGATE", "none")]),
        NativeCode::NotDelegated
    );
    // Single-artefact commands have no plan even when asked for.
    assert_eq!(
        native_env(
            "write_vk_ultra_honk -b /b -o /vk",
            &[("BB_REMOTE_DELEGATE", "write_vk_ultra_honk")]
        ),
        NativeCode::NoPlan
    );

    let bad = Env::from_pairs([("BB_REMOTE_DELEGATE", "prove,bogus")]);
    let err = Settings::load(&bad).unwrap_err();
    assert!(
        err.to_string().contains("BB_REMOTE_DELEGATE") && err.to_string().contains("bogus"),
        "{err}"
    );
}

#[test]
fn bb_remote_grammar_forces_the_grammar() {
    assert_eq!(
        native_env("prove -b /b", &[("BB_REMOTE_GRAMMAR", "legacy")]),
        NativeCode::NotDelegated
    );
    let plan = remote_env("avm_prove -o /t", &[("BB_REMOTE_GRAMMAR", "legacy")]);
    assert_eq!(plan.generation, Generation::Legacy);
    let err = Settings::load(&Env::from_pairs([("BB_REMOTE_GRAMMAR", "v3")])).unwrap_err();
    assert!(err.to_string().contains("BB_REMOTE_GRAMMAR"));
}

// ---- every command of both grammars ----

#[test]
fn every_command_bare_with_the_default_set_and_when_named_in_bb_remote_delegate() {
    for (grammar, commands, default_set) in [
        ("legacy", tables::LEGACY, LEGACY_DEFAULT),
        ("modern", tables::MODERN, MODERN_DEFAULT),
    ] {
        for spec in commands {
            let name = spec.name;
            let forced = [("BB_REMOTE_GRAMMAR", grammar)];
            let named = [("BB_REMOTE_GRAMMAR", grammar), ("BB_REMOTE_DELEGATE", name)];
            if name == "--version" {
                assert_eq!(native_env(name, &forced), NativeCode::Informational);
                continue;
            }
            let default_verdict = verdict_env(name, &forced);
            assert_eq!(
                matches!(default_verdict, Route::Remote(_)),
                default_set.contains(&name),
                "{grammar} {name}"
            );
            if let Route::Native(r) = &default_verdict {
                assert_eq!(r.code, NativeCode::NotDelegated, "{grammar} {name}");
            }
            let plannable = !spec.opaque
                && matches!(
                    spec.output(),
                    Some((_, bb_remote::grammar::OutputKind::Dir { .. }))
                );
            match verdict_env(name, &named) {
                Route::Remote(plan) => {
                    assert!(plannable, "{grammar} {name}");
                    let (reads, _) = spec.output().unwrap();
                    let default = reads.default.unwrap().trim_start_matches("./");
                    assert_eq!(
                        plan.output_dir.path,
                        format!("{CWD}/{default}"),
                        "{grammar} {name}"
                    );
                    assert_eq!(plan.command, name);
                    assert!(plan.render_argv(&plan.local_mapping()).unwrap()[0] == name);
                    for input in plan.inputs.iter().filter(|i| i.source == Dflt) {
                        assert!(
                            input.path.starts_with(CWD),
                            "{grammar} {name} {}",
                            input.role
                        );
                    }
                }
                Route::Native(r) => {
                    assert!(!plannable, "{grammar} {name}: {r:?}");
                    assert_eq!(r.code, NativeCode::NoPlan, "{grammar} {name}");
                }
            }
        }
    }
}

#[test]
fn env_sourced_values_are_recorded_as_such() {
    // No input option has an env fallback today; the scheme's does, and it is not a file.
    let plan = remote_env("prove -o /t", &[("BB_SCHEME", "ultra_honk")]);
    assert!(plan.inputs.iter().all(|i| i.source != FromEnv));
}
