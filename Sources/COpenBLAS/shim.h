// OpenBLAS's CBLAS interface plus its thread-count control (we parallelise in our own pool).
#include <cblas.h>
void openblas_set_num_threads(int num_threads);
