"""Safe deploys: Worker Deployment Versions made current, ramped, rolled back and drained, behind a
replay gate (README: deploying a new build; `python -m deploy --help`)."""
