"""QR codes as inline SVG, drawn on the server: no image service sees the secret, no JavaScript."""

from __future__ import annotations

from django.utils.safestring import SafeString, mark_safe


def qr_svg(data: str, *, label: str = "QR code") -> SafeString:
    """An `<svg>` element showing `data` as a QR code, to inline in HTML (or a JSON answer).

    One filled path on a white background: `SvgImage`'s `svg:rect` elements render blank when
    inlined. The default border of four modules stays (phones need the quiet zone), and the size
    is left to CSS (the viewBox keeps the modules square).
    """
    # Imported here, when a code is drawn (enrolment, the admin's page for desks): qrcode loads
    # Pillow for its other image kinds, which no other request needs.
    import qrcode
    from qrcode.compat.etree import ET
    from qrcode.image.svg import SvgPathFillImage

    root = qrcode.make(data, image_factory=SvgPathFillImage).get_image()
    for attribute in ("width", "height"):
        root.attrib.pop(attribute, None)
    for element in root.iter():
        element.attrib.pop("id", None)  # ids must be unique on a page
    root.set("class", "qr-code")
    root.set("role", "img")
    root.set("aria-label", label)
    root.set("shape-rendering", "crispEdges")
    # ElementTree escapes every attribute and text, so the markup is safe to inline.
    return mark_safe(ET.tostring(root, encoding="unicode"))  # noqa: S308
