// Accessors for OpenMPI's predefined handles. In mpi.h they are macros over the addresses of
// incomplete globals (MPI_COMM_WORLD, MPI_FLOAT, MPI_SUM, ...) or pointer casts (MPI_IN_PLACE),
// which Swift cannot import; these static inline functions can be.
#pragma once
#include <openmpi/mpi.h>

static inline MPI_Comm _Nonnull nsae_comm_world(void) { return MPI_COMM_WORLD; }

static inline MPI_Datatype _Nonnull nsae_type_float(void) { return MPI_FLOAT; }
static inline MPI_Datatype _Nonnull nsae_type_double(void) { return MPI_DOUBLE; }
static inline MPI_Datatype _Nonnull nsae_type_int32(void) { return MPI_INT32_T; }
static inline MPI_Datatype _Nonnull nsae_type_int64(void) { return MPI_INT64_T; }
static inline MPI_Datatype _Nonnull nsae_type_uint8(void) { return MPI_UINT8_T; }

static inline MPI_Op _Nonnull nsae_op_sum(void) { return MPI_SUM; }
static inline MPI_Op _Nonnull nsae_op_max(void) { return MPI_MAX; }
static inline MPI_Op _Nonnull nsae_op_min(void) { return MPI_MIN; }

static inline void * _Nonnull nsae_in_place(void) { return MPI_IN_PLACE; }
static inline MPI_Status * _Nonnull nsae_status_ignore(void) { return MPI_STATUS_IGNORE; }
static inline MPI_Request _Nonnull nsae_request_null(void) { return MPI_REQUEST_NULL; }
static inline MPI_Info _Nonnull nsae_info_null(void) { return MPI_INFO_NULL; }
