"""What a build of paysaga is: its packages, each with its floor and whether it ships (`packages`,
the one list the architecture test, pyproject, the Dockerfile and the build digest follow), and
the build id a worker polls under (`build`)."""
