// HDF5 exposes many constants as function-like macros that Swift cannot import.
// These static inline wrappers make them callable from Swift.
#include <hdf5.h>
#include <hdf5_hl.h>

static inline hid_t naslab_H5T_NATIVE_FLOAT(void) { return H5T_NATIVE_FLOAT; }
static inline hid_t naslab_H5T_NATIVE_DOUBLE(void) { return H5T_NATIVE_DOUBLE; }
static inline hid_t naslab_H5T_NATIVE_INT32(void) { return H5T_NATIVE_INT32; }
static inline hid_t naslab_H5T_NATIVE_INT64(void) { return H5T_NATIVE_INT64; }
static inline hid_t naslab_H5T_NATIVE_UINT8(void) { return H5T_NATIVE_UINT8; }
static inline hid_t naslab_H5T_NATIVE_UINT64(void) { return H5T_NATIVE_UINT64; }
static inline hid_t naslab_H5T_C_S1(void) { return H5T_C_S1; }
static inline size_t naslab_H5T_VARIABLE(void) { return H5T_VARIABLE; }
static inline unsigned naslab_H5F_ACC_TRUNC(void) { return H5F_ACC_TRUNC; }
static inline unsigned naslab_H5F_ACC_EXCL(void) { return H5F_ACC_EXCL; }
static inline unsigned naslab_H5F_ACC_RDONLY(void) { return H5F_ACC_RDONLY; }
static inline unsigned naslab_H5F_ACC_RDWR(void) { return H5F_ACC_RDWR; }
static inline unsigned naslab_H5F_ACC_SWMR_READ(void) { return H5F_ACC_SWMR_READ; }
static inline unsigned naslab_H5F_ACC_SWMR_WRITE(void) { return H5F_ACC_SWMR_WRITE; }
static inline hid_t naslab_H5P_DEFAULT(void) { return H5P_DEFAULT; }
static inline hid_t naslab_H5P_FILE_ACCESS(void) { return H5P_FILE_ACCESS; }
static inline hid_t naslab_H5P_FILE_CREATE(void) { return H5P_FILE_CREATE; }
static inline hid_t naslab_H5P_DATASET_CREATE(void) { return H5P_DATASET_CREATE; }
static inline hid_t naslab_H5P_LINK_CREATE(void) { return H5P_LINK_CREATE; }
static inline hsize_t naslab_H5S_UNLIMITED(void) { return H5S_UNLIMITED; }
static inline hid_t naslab_H5S_ALL(void) { return H5S_ALL; }
static inline H5F_libver_t naslab_H5F_LIBVER_EARLIEST(void) { return H5F_LIBVER_EARLIEST; }
static inline H5F_libver_t naslab_H5F_LIBVER_LATEST(void) { return H5F_LIBVER_LATEST; }
