#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# mpirun-nested.sh -- mpirun, from inside a program that mpirun started
# (`mpirun -n 1 ./app`, whose pool's launcher is
# "sh mpirun-nested.sh -n 1 --quiet --hostfile hosts": docs/cluster.md).
# Open MPI 4.1 refuses an mpirun while the outer job's variables are set
# ("mpirun does not support recursive calls"), so they go first: every
# OMPI_* and PMIX_* variable but OMPI_ALLOW_RUN_AS_ROOT*.  Give MCA
# parameters on the command line (--mca NAME VALUE), not as OMPI_MCA_*.
for var in $(env | sed -n 's/^\(OMPI_[A-Za-z0-9_]*\)=.*/\1/p; s/^\(PMIX_[A-Za-z0-9_]*\)=.*/\1/p'); do
  case $var in
    OMPI_ALLOW_RUN_AS_ROOT*) ;;
    *) unset "$var" ;;
  esac
done
exec mpirun "$@"
