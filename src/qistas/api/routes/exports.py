"""Export jobs (filled in below)."""
from fastapi import APIRouter

router = APIRouter(tags=["exports"])
