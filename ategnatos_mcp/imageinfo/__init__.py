"""Image facts: size, format, colour profile, EXIF and embedded generation parameters."""

from ategnatos_mcp.imageinfo.models import GenerationParameters, ImageInfo
from ategnatos_mcp.imageinfo.parameters import decode_user_comment, parse_a1111, parse_comfyui
from ategnatos_mcp.imageinfo.reader import inspect_image, read_image_info

__all__ = [
    "GenerationParameters",
    "ImageInfo",
    "decode_user_comment",
    "inspect_image",
    "parse_a1111",
    "parse_comfyui",
    "read_image_info",
]
