//! Tempered logarithm / exponential, tempered softmax and the bi-tempered
//! logistic loss (Amid et al. 2019). Under construction.
