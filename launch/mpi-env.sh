# Environment for OpenMPI jobs of nanosae; source it before mpirun (the launchers and tests do).
#
# Transports: shared memory (vader) between ranks of one host, TCP between hosts, self for a rank
# to itself. Naming them keeps OpenMPI from probing for InfiniBand/OFI/UCX hardware that containers
# and cloud VMs lack (the "no high-speed network found" warnings) without hiding any other output.
export OMPI_MCA_pml=ob1
export OMPI_MCA_btl=self,vader,tcp
# More ranks than cores (small machines, tests) must be allowed explicitly.
export OMPI_MCA_rmaps_base_oversubscribe=1
# Containers and CI run as root; OpenMPI refuses that unless told twice.
if [ "$(id -u)" = 0 ]; then
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
# One BLAS thread per rank unless the caller chose otherwise: ranks already fill the cores.
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}
