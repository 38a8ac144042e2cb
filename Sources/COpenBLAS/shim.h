// OpenBLAS's cblas interface plus its runtime controls (thread count, selected core).
#pragma once
#include <cblas.h>
