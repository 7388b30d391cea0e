import CHiredis
import HeraldCore
