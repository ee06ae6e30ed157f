//! Focal loss (Lin et al. 2017). Under construction.
