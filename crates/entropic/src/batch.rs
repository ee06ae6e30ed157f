//! Row-major `[n, c]` batches: a borrowed view ([`Batch`]) and an owned
//! buffer ([`BatchBuf`]) that converts from and to nalgebra matrices.

use nalgebra::{DMatrix, DMatrixView, Dyn, Scalar};

use crate::error::{Error, Result};

/// A borrowed row-major batch of `n` rows with `c` columns each (row `i` is
/// `data[i*c .. (i+1)*c]`), the layout of a contiguous PyTorch/NumPy array.
///
/// # Example
/// ```
/// use entropic::Batch;
/// let data = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
/// let b = Batch::new(&data, 2, 3)?;
/// assert_eq!(b.row(1), &[4.0, 5.0, 6.0]);
/// assert!(Batch::new(&data, 4, 3).is_err());
/// # Ok::<(), entropic::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Batch<'a, T> {
    data: &'a [T],
    n: usize,
    c: usize,
}

impl<'a, T> Batch<'a, T> {
    /// Views `data` as `n` rows of `c` columns.
    ///
    /// # Errors
    /// [`Error::InvalidShape`] when `n·c` overflows, [`Error::ShapeMismatch`]
    /// when `data.len() != n·c`.
    pub fn new(data: &'a [T], n: usize, c: usize) -> Result<Self> {
        let len = n.checked_mul(c).ok_or(Error::InvalidShape {
            what: "batch",
            n,
            c,
            requirement: "n * c must fit in usize",
        })?;
        if data.len() != len {
            return Err(Error::ShapeMismatch {
                what: "batch data",
                expected: len,
                actual: data.len(),
            });
        }
        Ok(Self { data, n, c })
    }

    /// Views `data` as a single row.
    pub fn single_row(data: &'a [T]) -> Self {
        Self {
            data,
            n: 1,
            c: data.len(),
        }
    }

    /// Number of rows.
    pub fn n(&self) -> usize {
        self.n
    }

    /// Number of columns (classes).
    pub fn c(&self) -> usize {
        self.c
    }

    /// The underlying row-major slice.
    pub fn as_slice(&self) -> &'a [T] {
        self.data
    }

    /// Row `i`; an empty slice when `i >= n`.
    pub fn row(&self, i: usize) -> &'a [T] {
        if i >= self.n {
            return &[];
        }
        &self.data[i * self.c..(i + 1) * self.c]
    }

    /// Iterates over the rows in order (yields `n` slices, also when `c = 0`).
    pub fn rows(&self) -> impl ExactSizeIterator<Item = &'a [T]> + 'a {
        let (data, c) = (self.data, self.c);
        (0..self.n).map(move |i| &data[i * c..(i + 1) * c])
    }

    /// Checks that `other` has the same shape, naming it `what` otherwise.
    pub(crate) fn same_shape<U>(&self, other: &Batch<'_, U>, what: &'static str) -> Result<()> {
        if other.n != self.n || other.c != self.c {
            return Err(Error::ShapeMismatch {
                what,
                expected: self.data.len(),
                actual: other.data.len(),
            });
        }
        Ok(())
    }
}

impl<'a, T: Scalar> Batch<'a, T> {
    /// A zero-copy nalgebra view (row stride `c`, column stride 1).
    ///
    /// # Example
    /// ```
    /// use entropic::Batch;
    /// let data = [1.0, 2.0, 3.0, 4.0];
    /// let m = Batch::new(&data, 2, 2)?.as_matrix_view();
    /// assert_eq!(m[(1, 0)], 3.0);
    /// # Ok::<(), entropic::Error>(())
    /// ```
    pub fn as_matrix_view(&self) -> DMatrixView<'a, T, Dyn, Dyn> {
        DMatrixView::from_slice_with_strides_generic(self.data, Dyn(self.n), Dyn(self.c), Dyn(self.c.max(1)), Dyn(1))
    }
}

/// An owned row-major batch, e.g. converted from a (column-major) nalgebra
/// matrix, or a gradient to hand back as one.
///
/// # Example
/// ```
/// use entropic::BatchBuf;
/// use nalgebra::DMatrix;
/// let m = DMatrix::from_row_slice(2, 3, &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
/// let b = BatchBuf::from_matrix(&m);
/// assert_eq!(b.view().row(0), &[1.0, 2.0, 3.0]);
/// assert_eq!(b.to_matrix(), m);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct BatchBuf<T> {
    data: Vec<T>,
    n: usize,
    c: usize,
}

impl<T> BatchBuf<T> {
    /// Takes ownership of row-major `data` with shape `(n, c)`.
    ///
    /// # Errors
    /// As [`Batch::new`].
    pub fn new(data: Vec<T>, n: usize, c: usize) -> Result<Self> {
        Batch::new(&data, n, c)?;
        Ok(Self { data, n, c })
    }

    /// Borrows as a [`Batch`].
    pub fn view(&self) -> Batch<'_, T> {
        Batch {
            data: &self.data,
            n: self.n,
            c: self.c,
        }
    }

    /// The row-major data.
    pub fn into_vec(self) -> Vec<T> {
        self.data
    }
}

impl<T: Scalar> BatchBuf<T> {
    /// Copies a matrix (rows = samples, columns = classes) into row-major order.
    pub fn from_matrix(m: &DMatrix<T>) -> Self {
        let (n, c) = m.shape();
        let data = m.transpose().as_slice().to_vec();
        Self { data, n, c }
    }

    /// Copies into a nalgebra matrix of shape `(n, c)`.
    pub fn to_matrix(&self) -> DMatrix<T> {
        DMatrix::from_row_slice(self.n, self.c, &self.data)
    }
}
