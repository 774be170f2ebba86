//! `npr bench` at CI size (no timing assertion: only that every figure is measured and
//! written), and the CPU thread budget as a run records it (src/threads.rs).
use crate::cli::{npr, ok, tiny_config, tiny_synth, train, usage_error};

#[test]
fn bench_measures_both_models_end_to_end_and_writes_json() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("bench.json");
    let test = tiny_synth().join("synth/test");
    let stdout = ok(&npr(
        &[
            "bench",
            "--device",
            "cpu",
            "--batch-size",
            "2",
            "--load-size",
            "16",
            "--crop-size",
            "16",
            "--steps",
            "1",
            "--images",
            "12",
            "--workers",
            "1",
            "--dataroot",
            test.to_str().unwrap(),
            "--json",
            json.to_str().unwrap(),
        ],
        &[("NPR_THREADS", "1")],
    ));
    assert!(stdout.contains("attention / baseline"), "{stdout}");
    let figures: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let models = figures["models"].as_array().unwrap();
    let names: Vec<&str> = models
        .iter()
        .map(|m| m["model"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["baseline", "attention"]);
    for m in models {
        for key in [
            "step_train_ips",
            "step_infer_ips",
            "e2e_train_ips",
            "e2e_test_ips",
            "host_peak_mib",
        ] {
            let v = m[key].as_f64();
            assert!(
                v.is_some_and(|v| v.is_finite() && v > 0.0),
                "{key} of {}: {:?}",
                m["model"],
                m[key]
            );
        }
        assert_eq!(m["torch_threads"], 1, "NPR_THREADS sizes libtorch's team");
        assert_eq!(m["loader_threads"], 1);
        assert!(m["gpu_mib"].is_null(), "no GPU figure on CPU");
    }
    assert!(
        m_params(models, 0) < m_params(models, 1),
        "attention adds parameters"
    );

    let loader = ok(&npr(
        &[
            "bench",
            "--loader",
            "--dataroot",
            test.to_str().unwrap(),
            "--images",
            "8",
            "--batch-size",
            "4",
            "--load-size",
            "16",
            "--crop-size",
            "16",
        ],
        &[],
    ));
    assert!(loader.contains("loader images/s:"), "{loader}");
}

fn m_params(models: &[serde_json::Value], i: usize) -> i64 {
    models[i]["parameters"].as_i64().unwrap()
}

#[test]
fn a_run_records_its_threads_and_a_bad_thread_count_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = tiny_config(dir.path(), "single");
    let bad = npr(
        &[
            "train",
            "--config",
            config.to_str().unwrap(),
            "--out",
            dir.path().join("bad").to_str().unwrap(),
        ],
        &[("NPR_THREADS", "0")],
    );
    usage_error(&bad, "NPR_THREADS");
    assert!(!dir.path().join("bad").exists(), "nothing written");

    // data.workers is 2 in the tiny config; on CPU the loader gets at most the usable
    // cores, and NPR_LOADER_THREADS overrides that.
    let run = dir.path().join("run");
    ok(&train(&config, &run, &["train.epochs=1"], &[]));
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("meta.json")).unwrap()).unwrap();
    let cores = std::thread::available_parallelism().unwrap().get() as i64;
    assert_eq!(meta["cpu_threads"], cores);
    assert_eq!(meta["loader_threads"], 2.min(cores));
    let user_set = ["GOMP_SPINCOUNT", "OMP_WAIT_POLICY"]
        .iter()
        .any(|k| std::env::var_os(k).is_some());
    if !user_set {
        assert_eq!(
            meta["openmp_spin"],
            npr::threads::SPIN_COUNT,
            "started with npr's short OpenMP spin"
        );
    }
}
