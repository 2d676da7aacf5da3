"""The Japanese font embedded in the printable daily lists (app/lists/formats.py).

``ipaexg.ttf`` is IPAexGothic 004.01 (TrueType outlines, so reportlab can subset and embed it; the
OTF/CFF Noto CJK fonts of the operating system cannot be embedded by reportlab). It was taken unmodified
from the PyPI package ``matplotlib-fontja`` 1.1.0 (sha256 of the font file:
3b9955a5e437ffb24c41548e79296fa724822da21ee75dc1b94f6ccdb8f400dd). It is redistributed under the
IPA Font License Agreement v1.0 (IPA_Font_License_Agreement_v1.0.txt beside it; Readme_ipaexg00401.txt
is the font's own readme); embedding it in documents is permitted by that licence.
"""
