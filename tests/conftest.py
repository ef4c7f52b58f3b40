"""Test-session settings: set before torch, PennyLane-Lightning or Aer load their OpenMP runtimes.

On small machines several OpenMP pools spinning against each other slow tests tenfold, so the
suite runs single-threaded with passive waiting (subprocesses and notebooks inherit this).

``python -m pytest -m "not slow"`` is the quick subset; the plain command runs everything. The
slow tests are listed here (not marked in each file), measured with ``--durations=0`` on the
2-core development machine: every test that took 2 s or more, by file and function (all
parameters of a listed function are slow).
"""

import os

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("MPLBACKEND", "Agg")

SLOW = {
    "test_activation.py": ["test_daruan_trains_inside_an_mlp"],
    "test_benchmarks.py": ["test_quick_run_writes_rows"],
    "test_cli.py": ["test_fit_demo_end_to_end", "test_bad_csv_file_via_subprocess", "test_search_is_registered_lazily",
                    "test_ctrl_c_in_a_real_process", "test_fit_csv_and_feynman_in_process",
                    "test_no_progress_prints_each_stage_when_it_ends", "test_outputs_are_written_atomically"],
    "test_bf16.py": ["test_low_precision_model_fits_and_daruan_runs"],
    "test_conformance.py": ["test_registered_evaluator_conforms"],
    "test_ddp.py": ["test_ddp_averaged_gradients_equal_full_batch_gradients"],
    "test_derivatives.py": ["test_functional_call_loop_in_a_fresh_process_is_never_stale", "test_gradgradcheck_on_the_default_path"],
    "test_docs.py": ["test_wheel_and_sdist_carry_the_native_sources"],
    "test_hardware.py": ["test_parameter_shift_on_mitigated_values", "test_readout_mitigated_shots_are_unbiased",
                         "test_noisy_aer_shots_fold_in_readout_error", "test_mitigation_cuts_the_error_on_fake_manila_noise"],
    "test_kanqas.py": ["test_import_without_gymnasium_names_the_extra", "test_molecules_start_far_from_exact",
                       "test_qkan_agent_learns_bell", "test_agent_finds_bell_and_checkpoint_resumes",
                       "test_tapered_lih_keeps_the_spectrum_and_hartree_fock_state"],
    "test_kanqas_agent.py": ["test_success_replay_keeps_the_successful_episodes_and_mixes_them_into_batches"],
    "test_kanqas_benchmark.py": ["test_kanqas_benchmark_quick", "test_kanqas_paper_benchmark_quick",
                                 "test_kanqas_paper_defaults_section_stores_success_curves"],
    "test_kanqas_hardware.py": ["test_shot_estimates_are_unbiased_with_honest_error_bars"],
    "test_kanqas_parallel.py": ["test_workers_stop_when_their_parent_is_killed_outright",
                                "test_a_failing_or_dying_item_is_reported_and_the_others_finish"],
    "test_models.py": ["test_fit_classification_reports_accuracy", "test_extend_trains_further",
                       "test_fit_lbfgs_reduces_error_below_threshold"],
    "test_native.py": ["test_build_cli", "test_build_cache_is_reused"],
    "test_pennylane.py": ["test_qiskit_aer_plugin_gradient_within_five_sigma", "test_qiskit_remote_with_fake_backend",
                          "test_qiskit_aer_plugin_device_within_five_sigma"],
    "test_properties.py": ["test_layer_constructor_builds_or_names_the_argument"],
    "test_qiskit.py": ["test_closed_form_model_on_fake_manila_runtime_estimator"],
    "test_readme.py": ["test_readme_example_runs"],
    "test_symbolic.py": ["test_auto_symbolic_recovers_the_demo_formula", "test_auto_symbolic_falls_back_to_the_exact_form",
                         "test_model_formula_equals_model", "test_px_models_have_exact_formulas_at_any_depth",
                         "test_auto_symbolic_runs_on_deep_px_models"],
    "test_training.py": ["test_fit_keeps_lbfgs_learning_below_torchs_curvature_threshold"],
    "test_tutorials.py": ["test_tutorial_executes_and_matches_its_stored_outputs", "test_execute_script_stores_outputs_atomically",
                          "test_check_flag_reports_drift_and_writes_nothing"],
}  # fmt: skip


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.originalname in SLOW.get(item.path.name, ()) if hasattr(item, "originalname") else False:
            item.add_marker(pytest.mark.slow)
