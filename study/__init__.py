"""study: rerun and extend Cole et al. (CVPR 2022), "When Does Contrastive Visual Representation Learning Work?".

The `study` command is the front; the same steps from Python (docs/architecture.md; each package's docstring):

    study.manifests   BuildConfig, build_manifest, load_manifest        manifests of image datasets
    study.train       PretrainConfig, pretrain                          one pretraining run -> encoder.pt
    study.evaluate    EvalConfig, evaluate                              linear probes, kNN, fine-tuning, ...
    study.grids       plan_grid, load_profile                           a YAML grid -> jobs with stable ids
    study.launch.runner.run_job                                         one planned job, its result record written
    study.results     collect, read_table, aggregate                    results as a pandas table
    study.report      build_report                                      the report's figures and tables

Errors in what a user gives are `study.errors.StudyError`, naming the key, file or line.
"""

__version__ = "0.1.0"
