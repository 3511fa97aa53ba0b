"""Figure layout (ogan_ign/images.py): every cell lands where its row and column say."""

import os
import tempfile

import imageio.v3 as iio
import numpy as np
import tensorflow as tf

from ogan_ign import images


def labelled_cells(rows, cols, h=3, w=2, c=1):
    """A (rows, cols, h, w, c) table whose cell (r, k) is filled with a value that
    names it, in [-1, 1]."""
    values = np.linspace(-1.0, 0.9, rows * cols).reshape(rows, cols)
    return np.broadcast_to(values[:, :, None, None, None], (rows, cols, h, w, c)).astype(np.float32)


def cell(picture, r, k, h, w, pad=1):
    top, left = pad + r * (h + pad), pad + k * (w + pad)
    return picture[top:top + h, left:left + w]


class TableTest(tf.test.TestCase):

    def test_cells_are_placed_by_row_and_column(self):
        cells = labelled_cells(2, 3)
        picture = images.table(cells)
        self.assertEqual(picture.shape, (2 * 4 + 1, 3 * 3 + 1))  # grey: no channel axis
        expected = images.to_uint8(cells)
        for r in range(2):
            for k in range(3):
                self.assertAllEqual(cell(picture, r, k, 3, 2), expected[r, k, :, :, 0])
        # Padding rows and columns stay white.
        self.assertTrue(np.all(picture[0] == 255) and np.all(picture[:, 0] == 255))
        self.assertTrue(np.all(picture[4] == 255) and np.all(picture[:, 3] == 255))

    def test_colour_keeps_its_channels(self):
        cells = labelled_cells(1, 2, c=3)
        cells[0, 1, ..., 2] = 1.0  # blue channel of the second cell only
        picture = images.table(cells)
        self.assertEqual(picture.shape, (5, 7, 3))
        self.assertTrue(np.all(cell(picture, 0, 1, 3, 2)[..., 2] == 255))
        self.assertFalse(np.all(cell(picture, 0, 0, 3, 2)[..., 2] == 255))

    def test_to_uint8_maps_the_range(self):
        self.assertAllEqual(images.to_uint8([-1.0, 0.0, 1.0, 3.0, -7.0]), [0, 128, 255, 255, 0])

    def test_grid_is_row_major_with_blank_filler(self):
        batch = labelled_cells(1, 5)[0]  # five cells, (5, h, w, c)
        laid = images.grid(batch, cols=3)
        self.assertEqual(laid.shape[:2], (2, 3))
        self.assertAllEqual(laid[0, 1], batch[1])
        self.assertAllEqual(laid[1, 0], batch[3])  # the fourth image starts row two
        self.assertTrue(np.all(laid[1, 2] == 1.0))  # the missing sixth cell is white

    def test_side_by_side_pairs_rows(self):
        a, b = labelled_cells(1, 2)[0], -labelled_cells(1, 2)[0]
        pairs = images.side_by_side(a, b)
        self.assertEqual(pairs.shape[:2], (2, 2))
        self.assertAllEqual(pairs[1, 0], a[1])
        self.assertAllEqual(pairs[1, 1], b[1])

    def test_saved_png_is_the_table(self):
        cells = labelled_cells(2, 2)
        with tempfile.TemporaryDirectory() as tmp:
            path = images.save_table(os.path.join(tmp, "a", "t.png"), cells)
            self.assertAllEqual(iio.imread(path), images.table(cells))
            self.assertEqual(os.listdir(os.path.dirname(path)), ["t.png"])  # no temp left

    def test_rejects_a_batch_where_a_table_is_expected(self):
        with self.assertRaisesRegex(ValueError, "rows, cols"):
            images.table(np.zeros((4, 3, 2, 1)))


if __name__ == "__main__":
    tf.test.main()
