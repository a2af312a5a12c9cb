"""The defaults of ``featstore export`` its help shows, in a module that imports nothing heavy (``--help``
stays fast); ``featstore.exporters`` uses them."""

MGFN_DEFAULT_CROPS = 1  # the store holds one view
# OpenTAD's THUMOS annotation calls the THUMOS validation videos (our train split) "training" and the test
# videos (our test split) "validation"; its THUMOS configs train on "training" and evaluate on "validation".
OPENTAD_SUBSET_NAMES = {"train": "training", "test": "validation"}
